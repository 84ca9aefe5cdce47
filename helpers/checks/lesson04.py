"""Checks for exercises/04_device_placement.ipynb: where the weights live, offload, and planning."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import numbers

import torch

from ..checking import Question, expect, numbered
from .common import as_id_rows, expect_course_model, load_course_model, reference_greedy, reference_model, reference_tokenizer

NOTEBOOK = "04_device_placement.ipynb"

SQUEEZE_BUDGET = {"cpu": "300MB"}      # q1: the setup cell loads the course model with this max_memory
LAYER = 20                             # q1: the layer the learner looks up
DISK_LAST = 4                          # q2: this many final decoder layers go to disk
PROMPT = "The capital of France is"    # q2
NEW_TOKENS = 10                        # q2
GPU_GIB, HEADROOM_GIB = 24, 2          # q3: 24 GiB cards, 2 GiB of each kept free
RAM_LAYERS = (10, 20)                  # q4: decoder layers that must stay in RAM (inclusive range)
LOW0_BUDGET = {0: "24GiB", 1: "24GiB", 2: "24GiB", "cpu": "64GiB"}  # q5

# Published Llama-2 shapes (float16 checkpoints).
LLAMA2_7B_SHAPE = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                       intermediate_size=11008, vocab_size=32000, max_position_embeddings=4096)
LLAMA2_70B_SHAPE = dict(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,
                        intermediate_size=28672, vocab_size=32000, max_position_embeddings=4096)


# --------------------------------------------------------------------------- shared helpers

@contextlib.contextmanager
def quiet_accelerate():
    """Silence accelerate's notes while a check loads or plans (imaginary GPUs, meta-device notes)."""
    loggers = [logging.getLogger(name) for name in ("accelerate.big_modeling", "accelerate.utils.modeling")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _load(**kwargs):
    with quiet_accelerate():
        return load_course_model(torch.float32, **kwargs)


@functools.lru_cache(maxsize=None)
def squeezed_reference():
    """The course model loaded as the q1 setup cell loads it."""
    return _load(device_map="auto", max_memory=dict(SQUEEZE_BUDGET))


@functools.lru_cache(maxsize=None)
def meta_llama(shape: str):
    """Llama-2 ``"7B"`` or ``"70B"`` in float16 on the meta device (no memory used)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**(LLAMA2_7B_SHAPE if shape == "7B" else LLAMA2_70B_SHAPE))
    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config, dtype=torch.float16)


def _as_device(value):
    """"disk" stays "disk"; anything else becomes a torch.device (str, int or torch.device)."""
    if isinstance(value, str) and value.strip().lower() == "disk":
        return "disk"
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (str, int, torch.device)):
        return torch.device(value)
    raise ValueError(value)


def _placement(value) -> str | None:
    """A device map's value as one name: 'cpu', 'disk', 'cuda:N' (an int N is GPU N), 'mps'; None if it is none of them.

    These are the values from_pretrained and infer_auto_device_map put in a map (a torch.device is read
    as its name).
    """
    if isinstance(value, torch.device):
        value = str(value)
    if _is_int(value):
        return f"cuda:{value}" if 0 <= value < 2**16 else None
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if value in ("cpu", "disk", "mps"):
        return value
    if value == "cuda":
        return "cuda:0"
    index = value.removeprefix("cuda:")
    if value.startswith("cuda:") and index.isdigit() and len(index) <= 5:
        return f"cuda:{int(index)}"
    return None


def _placements(device_map, name: str, modules: set[str]) -> dict[str, str]:
    """``device_map`` checked as a map from_pretrained could have made for a model with these ``modules``.

    Its keys are module names of the model ('' is the whole model), none inside another (from_pretrained
    refuses overlapping entries), and its values devices (:func:`_placement`); returns {module: placement}.
    """
    expect(isinstance(device_map, dict) and device_map, f"`{name}` should be a device map: a dict module name -> device")
    keys = list(device_map)
    odd = [k for k in keys if not isinstance(k, str)]
    expect(not odd, f"`{name}` has a key that is not a module name: {str(odd[:1])[:60]} (keys are names "
                    "such as 'model.layers.0')")
    unknown = sorted(k for k in keys if k not in modules)
    expect(not unknown, f"`{name}` names {unknown[:1]}, which is not a module of the model: use the module "
                        "names the model has (model.named_modules())"[:300])
    placed = {}
    for key in keys:
        placed[key] = _placement(device_map[key])
        expect(placed[key] is not None,
               f"`{name}` gives {key!r} the device {str(device_map[key])[:40]!r}: a device map's values are "
               "'cpu', 'disk', or a GPU (its index, or 'cuda:N')")
    for inner in keys:
        parts = inner.split(".") if inner else []
        outer = next((o for o in ("", *(".".join(parts[:i]) for i in range(1, len(parts)))) if o in placed), None)
        expect(outer is None, f"`{name}` places both {outer!r} and {inner!r}, which is inside it: a device map "
                              "gives each module one device (from_pretrained refuses overlapping entries)")
    return placed


def _device_of(name: str, device_map: dict):
    """The device a device map gives to the parameter ``name`` (longest matching module prefix)."""
    best, found = -1, None
    for module, device in device_map.items():
        if module == "" or name == module or name.startswith(module + "."):
            if len(module) > best:
                best, found = len(module), device
    return found


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _gpus_needed(model, per_gpu: int, no_split: bool = True) -> int:
    """The fewest GPUs of ``per_gpu`` bytes for which infer_auto_device_map puts nothing on 'cpu' or 'disk'.

    ``no_split=False`` leaves out ``no_split_module_classes``: the planner may then cut a decoder layer
    across two GPUs, which from_pretrained (which passes the model's no-split classes) never does.
    """
    from accelerate import infer_auto_device_map

    extra = dict(no_split_module_classes=model._no_split_modules) if no_split else {}
    with quiet_accelerate():
        for n in range(1, 129):
            device_map = infer_auto_device_map(model, max_memory={i: per_gpu for i in range(n)}, **extra)
            if all(_is_int(device) for device in device_map.values()):
                return n
    raise AssertionError("no GPU count found")


# --------------------------------------------------------------------------- q1

def _check_q1(squeezed_device, layer20_planned, layer20_weight_device):
    ref = squeezed_reference()
    name = f"model.layers.{LAYER}"
    weight = dict(ref.named_parameters())[f"{name}.self_attn.q_proj.weight"]
    values = {}
    for var, value in [("squeezed_device", squeezed_device), ("layer20_planned", layer20_planned),
                       ("layer20_weight_device", layer20_weight_device)]:
        try:
            values[var] = _as_device(value)
        except (ValueError, RuntimeError, TypeError):
            expect(False, f"`{var}` should be a device: a torch.device or a string such as 'cpu' or 'disk'")
    expect(values["squeezed_device"] == ref.device,
           "`squeezed_device` is not what `squeezed.device` reports (the device of its first parameter)")
    planned = ref.hf_device_map[name]
    expect(values["layer20_planned"] != torch.device("meta"),
           "`layer20_planned` is the *plan*: meta is where the tensor sits now. Read the plan from "
           "`squeezed.hf_device_map`")
    expect(values["layer20_planned"] == _as_device(planned),
           f"`layer20_planned` is not the entry for '{name}' in `squeezed.hf_device_map` "
           "(model.device only describes the first parameter)")
    expect(values["layer20_weight_device"] != "disk",
           "`layer20_weight_device` should be the `.device` of the weight tensor itself; 'disk' is not "
           "a torch device, it is a value in the device map")
    expect(values["layer20_weight_device"] == weight.device,
           f"`layer20_weight_device` is not the `.device` of "
           f"`squeezed.model.layers[{LAYER}].self_attn.q_proj.weight`")


# --------------------------------------------------------------------------- q2

def _check_q2(disk_model, disk_ids):
    expect_course_model(disk_model, "disk_model", weights=False)  # offloaded layers are on the meta device
    ref = reference_model()
    device_map = disk_model.hf_device_map
    expect(isinstance(device_map, dict) and device_map,
           "`disk_model` has no hf_device_map, so nothing was split or offloaded: pass a device_map dict "
           "that names 'disk' for the last layers")
    placed = _placements(device_map, "disk_model.hf_device_map", set(dict(ref.named_modules())))
    names = [name for name, _ in ref.named_parameters(remove_duplicate=False)]  # lm_head's tied weight too
    uncovered = [name for name in names if _device_of(name, placed) is None]
    expect(not uncovered, f"`disk_model.hf_device_map` gives no device to {uncovered[:1]}: from_pretrained "
                          "refuses a map that leaves out a parameter, so this map did not come from a load")
    first_disk = ref.config.num_hidden_layers - DISK_LAST
    wrong_disk, not_disk, not_cpu = set(), set(), set()
    for name in names:
        device = _device_of(name, placed)
        parts = name.split(".")
        layer = int(parts[2]) if name.startswith("model.layers.") else None
        if layer is not None and layer >= first_disk:
            if device != "disk":
                not_disk.add(f"model.layers.{layer}")
        elif device == "disk":
            wrong_disk.add(".".join(parts[:3]) if layer is not None else name.rsplit(".", 1)[0])
        elif device != "cpu":
            not_cpu.add(name.rsplit(".", 1)[0])
    expect(not not_disk, f"{len(not_disk)} of the last {DISK_LAST} decoder layers are not on 'disk' "
                         f"(e.g. {min(not_disk, default='')})")
    expect(not wrong_disk, f"only the last {DISK_LAST} decoder layers go to disk; these should stay on 'cpu': "
                           f"{', '.join(sorted(wrong_disk)[:3])}")
    expect(not not_cpu, "everything except the last layers should be on 'cpu' in this question "
                        f"(e.g. {min(not_cpu, default='')})")
    _expect_offloaded_load(disk_model, ref)
    rows = as_id_rows(disk_ids)
    expect(len(rows) == 1, "one prompt, one output row: `disk_ids` should hold a single sequence")
    want, n_prompt = list(reference_greedy(PROMPT, NEW_TOKENS)), len(reference_tokenizer()(PROMPT)["input_ids"])
    got = rows[0]
    expect(got[:n_prompt] == want[:n_prompt],
           f"`disk_ids` should start with the ids of the prompt {PROMPT!r} (keep the whole output of generate())")
    expect(len(got) - n_prompt == NEW_TOKENS,
           f"you generated {len(got) - n_prompt} new tokens, the question asks for {NEW_TOKENS} (max_new_tokens)")
    expect(got == want, "the new tokens differ from a greedy decode of the course model: use do_sample=False "
                        "(offloading must not change greedy output)")


def _expect_offloaded_load(facts, ref) -> None:
    """Reject a model whose facts are not what from_pretrained(MODEL, dtype=float32, device_map=<its map>) leaves.

    An offloaded load keeps the offloaded weights on the meta device (``on_meta``), its first parameter
    (the embedding, on 'cpu') holds the checkpoint's weights, and get_memory_footprint() still counts every
    parameter: exactly the float32 model's footprint. A map written into ``hf_device_map`` by hand after a
    plain load has no weight on the meta device.
    """
    expect(tuple(facts.parameter_names) == tuple(name for name, _ in ref.named_parameters()),
           "`disk_model`'s parameters are not the course model's: load it with from_pretrained(MODEL, ...)")
    expect(facts.on_meta,
           "`disk_model.hf_device_map` sends layers to 'disk', but every weight of `disk_model` is in memory: "
           "a load that offloads leaves those weights on the meta device. Load the model with "
           "from_pretrained(MODEL, device_map=<your map>, offload_folder=...) instead of writing hf_device_map")
    expect(facts.dtypes == frozenset({torch.float32}) and not facts.is_quantized and not facts.has_4bit_layers,
           "the question loads the course model in float32 (dtype=torch.float32), not quantized")
    expect(facts.device == torch.device("cpu"),
           "`disk_model.device` (its first parameter's, the embedding) should be the CPU, as your map puts it")
    rows, want = facts.embedding_rows, ref.get_input_embeddings().weight
    expect(isinstance(rows, torch.Tensor) and rows.dtype == torch.float32 and rows.dim() == 2
           and 0 < rows.shape[0] <= want.shape[0] and rows.shape[1] == want.shape[1]
           and torch.equal(rows, want[: rows.shape[0]]),
           "`disk_model`'s embedding does not hold the checkpoint's weights: load it with from_pretrained(MODEL, ...)")
    expect(facts.memory_footprint == ref.get_memory_footprint(),
           "`disk_model.get_memory_footprint()` is not the float32 course model's: an offloaded load still "
           "counts the offloaded weights. Load it with from_pretrained(MODEL, dtype=torch.float32, device_map=...)")


# --------------------------------------------------------------------------- q3

def _check_q3(n_gpus_70b):
    from accelerate.utils import compute_module_sizes

    expect(_is_int(n_gpus_70b), "`n_gpus_70b` should be an integer (a number of GPUs)")
    model = meta_llama("70B")
    usable = (GPU_GIB - HEADROOM_GIB) * 2**30
    need = _gpus_needed(model, usable)
    n = int(n_gpus_70b)
    if n != need:
        naive = math.ceil(compute_module_sizes(model)[""] / usable)
        cutting = _gpus_needed(model, usable, no_split=False)
        causes = []
        if n == cutting:
            causes.append("what infer_auto_device_map answers without no_split_module_classes: it then cuts "
                          "decoder layers across GPUs, which from_pretrained never does. Pass "
                          "no_split_module_classes=llama70b._no_split_modules")
        if n == naive:
            causes.append("the model's size divided by the usable memory per GPU, but the planner places "
                          "whole decoder layers and keeps room on GPU 0: ask infer_auto_device_map")
        expect(not causes, "that is " + "; it is also ".join(causes))
    expect(n >= need, f"with {n} GPUs of {GPU_GIB - HEADROOM_GIB} GiB, part of the model still goes to "
                      "'cpu' or 'disk'")
    expect(n <= need, f"{n} GPUs are enough, but fewer would do: the question asks for the smallest number")


# --------------------------------------------------------------------------- q4

def _check_q4(offload_budget):
    from accelerate.utils import convert_file_size_to_int

    expect(isinstance(offload_budget, dict), "`offload_budget` should be a dict such as {'cpu': ...}")
    expect(set(offload_budget) == {"cpu"},
           "for this plan, the only key is 'cpu' (GPU keys are integers, and this question uses no GPU)")
    value = offload_budget["cpu"]
    try:
        size = value if _is_int(value) else convert_file_size_to_int(value)
    except (ValueError, TypeError, AttributeError, OverflowError):  # "1e400GB" is infinite bytes
        size = None
    expect(_is_int(size) and size > 0,
           "the budget should be a number of bytes (an int) or a size string such as '500MB' or '0.5GiB'")
    model = _load(device_map="auto", max_memory={"cpu": value})
    device_map = getattr(model, "hf_device_map", None)
    expect(device_map is not None and "disk" in device_map.values(),
           "with that budget nothing goes to disk: the whole model fits in it. Make it smaller")
    n_layers = model.config.num_hidden_layers
    in_ram = sum(_device_of(f"model.layers.{i}.mlp.up_proj.weight", device_map) == "cpu" for i in range(n_layers))
    low, high = RAM_LAYERS
    expect(in_ram >= low, f"with that budget only {in_ram} of {n_layers} decoder layers stay in RAM; "
                          f"the question asks for {low} to {high}. Make it larger")
    expect(in_ram <= high, f"with that budget {in_ram} of {n_layers} decoder layers stay in RAM; "
                           f"the question asks for {low} to {high}. Make it smaller")


# --------------------------------------------------------------------------- q5

def _plan_low0():
    import transformers.integrations.accelerate as tf_accelerate

    model = meta_llama("7B")
    with quiet_accelerate():
        budget = tf_accelerate.get_balanced_memory(model, max_memory=dict(LOW0_BUDGET),
                                                   no_split_module_classes=model._no_split_modules, low_zero=True)
        return tf_accelerate.infer_auto_device_map(model, max_memory=budget,
                                                   no_split_module_classes=model._no_split_modules)


def _check_q5(low0_map):
    expect(isinstance(low0_map, dict) and low0_map, "`low0_map` should be a device map: a dict module name -> device")
    model = meta_llama("7B")
    placed = _placements(low0_map, "low0_map", set(dict(model.named_modules())))
    want = {k: _placement(v) for k, v in _plan_low0().items()}
    names = [name for name, _ in model.named_parameters()]
    got_devices = [_device_of(name, placed) for name in names]
    expect(all(d is not None for d in got_devices),
           "`low0_map` does not give a device to every parameter: use the map infer_auto_device_map returns")
    want_devices = [_device_of(name, want) for name in names]
    expect(any(d.startswith("cuda:") for d in got_devices),
           "`low0_map` puts nothing on a GPU: plan with the GPU budget given in the question")
    on_gpu0 = sum(d == "cuda:0" for d in got_devices)
    want_gpu0 = sum(d == "cuda:0" for d in want_devices)
    expect(on_gpu0 <= want_gpu0, "GPU 0 holds too much: 'balanced_low_0' keeps GPU 0 (almost) empty. "
                                 "Lower GPU 0's budget with get_balanced_memory(..., low_zero=True)")
    expect(got_devices == want_devices,
           "that is not the map device_map='balanced_low_0' would produce: get_balanced_memory with "
           "low_zero=True, then infer_auto_device_map with the model's no-split classes")


q1, q2, q3, q4, q5 = QUESTIONS = numbered(
    Question("read where the offloaded model's layer 20 went",
        ["squeezed_device", "layer20_planned", "layer20_weight_device"], _check_q1,
        hints=["Three different views: the model's `.device`, the plan in `hf_device_map`, and a tensor's `.device`.",
               f"`squeezed.hf_device_map['model.layers.{LAYER}']` is the plan; "
               f"`squeezed.model.layers[{LAYER}].self_attn.q_proj.weight.device` is where that tensor is now.",
               "squeezed_device = squeezed.device; layer20_planned = squeezed.hf_device_map['model.layers.20']; "
               "layer20_weight_device = squeezed.model.layers[20].self_attn.q_proj.weight.device"]),
    Question(f"put the last {DISK_LAST} decoder layers on disk and still generate", ["disk_model", "disk_ids"],
        _check_q2,
        hints=["A device map dict must name every top-level module once it uses more than one device: "
               "model.embed_tokens, model.rotary_emb, model.norm, lm_head and each model.layers.i.",
               "Layers 26..29 -> 'disk', the rest -> 'cpu'. Pass offload_folder=tempfile.mkdtemp().",
               "disk_map = {'model.embed_tokens': 'cpu', 'model.rotary_emb': 'cpu', 'model.norm': 'cpu', "
               "'lm_head': 'cpu', **{f'model.layers.{i}': 'disk' if i >= 26 else 'cpu' for i in range(30)}}; "
               "then from_pretrained(MODEL, device_map=disk_map, offload_folder=...) and generate(..., "
               f"max_new_tokens={NEW_TOKENS}, do_sample=False)"]),
    Question(f"how many {GPU_GIB} GiB GPUs Llama-2-70B needs in float16", ["n_gpus_70b"], _check_q3,
        hints=["Build the 70B model on the meta device: `with init_empty_weights(): "
               "AutoModelForCausalLM.from_config(LLAMA2_70B, dtype=torch.float16)` (lesson 04, section 5).",
               f"Try n = 1, 2, 3, ... GPUs with max_memory={{0: '{GPU_GIB - HEADROOM_GIB}GiB', 1: ..., }} and "
               "infer_auto_device_map(model, max_memory=..., no_split_module_classes=model._no_split_modules).",
               "The answer is the first n for which every value in the device map is an int (a GPU): nothing on "
               "'cpu' or 'disk'. Dividing the size by the memory is not the same answer."]),
    Question("a max_memory that forces part of the course model to disk", ["offload_budget"], _check_q4,
        hints=["`max_memory={'cpu': ...}` caps what the planner may put in RAM; the rest goes to 'disk'.",
               "compute_module_sizes(model) gives the bytes per module: the embedding plus N layers of about "
               "14 MB each must fit (and the planner keeps room for the largest module).",
               "Try a few sizes: load with device_map='auto', max_memory={'cpu': '350MB'} and count the "
               "'cpu' layers in hf_device_map."]),
    Question("plan Llama-2-7B like device_map='balanced_low_0' on three GPUs", ["low0_map"], _check_q5,
        hints=["from_pretrained computes string strategies with get_balanced_memory, then infer_auto_device_map.",
               "'balanced_low_0' means get_balanced_memory(..., low_zero=True). Pass "
               "no_split_module_classes=model._no_split_modules to both functions.",
               "budget = get_balanced_memory(llama7b, max_memory=dict(LOW0_BUDGET), no_split_module_classes=..., "
               "low_zero=True); low0_map = infer_auto_device_map(llama7b, max_memory=budget, "
               "no_split_module_classes=...)"]),
    notebook=NOTEBOOK,
)
