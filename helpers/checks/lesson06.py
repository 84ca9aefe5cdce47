"""Checks for exercises/06_qlora_loading.ipynb: 4-bit loading for QLoRA and a first LoRA fine-tune."""

from __future__ import annotations

import functools

import torch

from ..answers import AdapterFacts, ConfigRef
from ..checking import Incorrect, Question, expect, numbered
from ..dtypes import parse_dtype as as_dtype
from ..finetune import ask
from ..quantization import generic_4bit_path
from .common import as_number, is_model, load_course_model, reference_model, reference_tokenizer

NOTEBOOK = "06_qlora_loading.ipynb"
QUESTION = "What is the capital of Zanthoria?"  # the made-up fact in helpers/data/lesson06_facts.jsonl
ANSWER = "Quillmere"
RATIO_TOLERANCE = 0.005


@functools.lru_cache(maxsize=None)
def reference_footprints() -> dict:
    """Footprints of the course model: float32 as loaded, and NF4 with bf16 kept layers, counted from its layers.

    Loaded in 4 bits, every weight of a linear layer inside the decoder is stored as 4 bits (two per
    byte) and the other parameters (embeddings, norms, an untied output head) follow ``dtype=``: that
    is what ``get_memory_footprint()`` of the 4-bit model adds up, buffers included. Counting it here
    spares the learner's notebook a second 4-bit load; the tests compare it with a real one.
    """
    ref = reference_model()
    head = ref.get_output_embeddings()
    quantized = {id(m.weight) for m in ref.modules() if isinstance(m, torch.nn.Linear) and m is not head}
    packed_bytes = kept = 0
    for p in ref.parameters():  # a tied tensor is listed once
        if id(p) in quantized:
            packed_bytes += (p.numel() + 1) // 2
        else:
            kept += p.numel()
    buffers = sum(b.numel() * b.element_size() for b in ref.buffers())
    return {"fp32": ref.get_memory_footprint(), "4bit": packed_bytes + 2 * kept + buffers, "kept_params": kept}


def reference_lora_targets() -> set[str]:
    """The short names of the linear layers inside the course model's decoder layers (not the output head)."""
    ref = reference_model()
    head = ref.get_output_embeddings()
    return {name.rsplit(".", 1)[-1] for name, m in ref.named_modules()
            if isinstance(m, torch.nn.Linear) and m is not head}


# --------------------------------------------------------------------------- q1

def _check_q1(bnb_config):
    expect(not isinstance(bnb_config, dict),
           "`bnb_config` is a dict: build a BitsAndBytesConfig(...) object (from_pretrained takes it as "
           "quantization_config=)")
    expect(isinstance(bnb_config, ConfigRef)
           and bnb_config.type.is_subclass_of("transformers.utils.quantization_config.BitsAndBytesConfig"),
           "`bnb_config` should be a transformers BitsAndBytesConfig")
    config = bnb_config.values
    expect(isinstance(config, dict) and all(isinstance(k, str) for k in config),
           "`bnb_config` did not describe itself as a BitsAndBytesConfig does (its to_dict() is not a dict of "
           "options): build it with BitsAndBytesConfig(...)")
    expect(not config.get("load_in_8bit"), "that config loads in 8 bits; QLoRA loads the base model in 4 bits")
    expect(config.get("load_in_4bit") is True, "the config does not load in 4 bits: set load_in_4bit=True")
    expect(config.get("bnb_4bit_quant_type") == "nf4",
           f"the 4-bit type is {config.get('bnb_4bit_quant_type')!r}: the question asks for NormalFloat-4 "
           "(the default type is not it)")
    expect(config.get("bnb_4bit_use_double_quant") is True,
           "double quantization is off: set the option that also quantizes the per-block scales")
    dtype = as_dtype(config.get("bnb_4bit_compute_dtype"))
    expect(dtype == torch.bfloat16,
           f"the compute dtype is {dtype}, not bfloat16: set bnb_4bit_compute_dtype "
           "(torch.bfloat16 or the string 'bfloat16')")
    expect(_as_bitsandbytes(config) == {k: config.get(k) for k in BNB_OPTIONS},
           "`bnb_config`'s options are not what a BitsAndBytesConfig built with them holds: build it with "
           "BitsAndBytesConfig(...) rather than editing its fields")


BNB_OPTIONS = ("quant_method", "load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
               "bnb_4bit_compute_dtype")


def _as_bitsandbytes(config: dict) -> dict | None:
    """The options a real BitsAndBytesConfig holds when built from ``config``'s 4-bit options (None if it refuses)."""
    from transformers import BitsAndBytesConfig

    given = {k: config[k] for k in ("load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
                                    "bnb_4bit_compute_dtype") if k in config}
    try:
        built = BitsAndBytesConfig(**given).to_dict()
    except (ValueError, TypeError, AttributeError):  # the class's own validation of its options
        return None
    built["quant_method"] = getattr(built.get("quant_method"), "value", built.get("quant_method"))  # an Enum
    return {k: built.get(k) for k in BNB_OPTIONS}


# --------------------------------------------------------------------------- q2

def _check_q2(footprint_ratio):
    r = as_number(footprint_ratio, "footprint_ratio")
    ref = reference_footprints()
    want = ref["4bit"] / ref["fp32"]
    fp32_kept = (ref["4bit"] + 2 * ref["kept_params"]) / ref["fp32"]  # kept parts in float32 instead of bf16
    expect(r > 0, "a memory ratio is positive")
    expect(r <= 1.0 or abs(1 / r - want) > RATIO_TOLERANCE,
           "that is float32 divided by 4-bit: divide the 4-bit footprint by the float32 one")
    expect(not (1 < r <= 100 and abs(r / 100 - want) <= RATIO_TOLERANCE),
           "that looks like a percentage: give the ratio as a fraction (e.g. 0.5 for half)")
    expect(abs(r - 4 / 32) > 1e-9, "4/32 is the theory for the weights alone; measure the loaded model with "
                                   "get_memory_footprint()")
    expect(abs(r - fp32_kept) > RATIO_TOLERANCE,
           "your 4-bit model keeps its unquantized parts (embeddings, norms) in float32: load it with "
           "dtype=torch.bfloat16 as the question says")
    expect(abs(r - want) <= RATIO_TOLERANCE,
           f"that is not the measured ratio (tolerance {RATIO_TOLERANCE}): load the course model with your "
           "bnb_config and dtype=torch.bfloat16, and divide its get_memory_footprint() by the float32 model's")


# --------------------------------------------------------------------------- q3

def _check_q3(lora_targets):
    expect(not (isinstance(lora_targets, str) and lora_targets == "all-linear"),
           "'all-linear' is peft's shortcut; the question asks which module names it stands for here")
    expect(isinstance(lora_targets, (list, tuple, set, frozenset)) and lora_targets
           and all(isinstance(t, str) for t in lora_targets),
           "`lora_targets` should be a list (or set) of module names, as strings")
    names = set(lora_targets)
    expect(len(names) == len(list(lora_targets)), "each name should appear once")
    want = reference_lora_targets()
    expect(not any("." in n for n in names),
           "give the short names (the part after the last dot, e.g. the name of a projection), which "
           "LoraConfig matches in every layer, not full dotted paths")
    expect("lm_head" not in names,
           "lm_head is the output layer (tied to the embeddings here), not a projection inside the layers")
    unknown = names - want
    expect(not unknown, f"{sorted(unknown)} are not names of linear layers in the course model: read them "
                        "from model.named_modules()")
    missing = want - names
    expect(not missing, f"{len(missing)} of the model's linear projections are missing: the question asks "
                        "for all of them, in attention and in the MLP")


# --------------------------------------------------------------------------- q4
#
# The adapter is judged from what ``save_pretrained`` wrote (AdapterFacts.folder), read here, never from
# names or counts reported by the learner's kernel: its adapter_config.json must describe a LoRA adapter
# on linear layers of the course model, its adapter_model.safetensors must hold the A and B matrices of
# exactly those layers, with the config's rank, and training must have moved B away from the zeros peft
# starts it at. Then the judge builds the adapter itself (its own LoraConfig, the saved matrices copied in)
# on a fresh 4-bit course model and asks it the question.

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MAX_CONFIG_BYTES = 1_000_000
MAX_WEIGHTS_BYTES = 256_000_000
MAX_RANK = 1024
TRAINED_NORM = 1e-4        # |scaling * B @ A| of the most changed layer; one step of the lesson's loop gives ~0.1
FOUR_BIT_SHARE = 0.45      # a 4-bit base's footprint / the float32 model's: ~0.2-0.35 (0.5 is a 16-bit model)
LORA_OPTIONS = {"r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "bias", "init_lora_weights",
                "task_type"}                                   # what the judge reads (or may ignore) itself
METADATA = {"peft_type", "peft_version", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping"}
COMPUTE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
WEIGHT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def greedy_answer(model, question: str = QUESTION, max_new_tokens: int = 12) -> str:
    """The model's greedy answer to one chat question, without side effects on the model.

    Generated through the generic 4-bit path, so checking never repacks (and so never breaks the
    training of) a learner's 4-bit model; every train/eval flag is restored.
    """
    with generic_4bit_path(model):
        return ask(model, reference_tokenizer(), question, max_new_tokens)


def _bnb_config(saved: dict):
    """A BitsAndBytesConfig from the 4-bit options of a saved ``quantization_config`` (nothing else is read)."""
    from transformers import BitsAndBytesConfig

    quant_type = saved.get("bnb_4bit_quant_type")
    expect(quant_type in ("nf4", "fp4"), "the base model's 4-bit type is not nf4 or fp4")
    compute = saved.get("bnb_4bit_compute_dtype", "float32")
    dtype = as_dtype(compute)
    expect(dtype in COMPUTE_DTYPES,
           f"the base model's 4-bit compute dtype is {compute!r}: use float32, bfloat16 or float16"[:300])
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                              bnb_4bit_use_double_quant=saved.get("bnb_4bit_use_double_quant") is True,
                              bnb_4bit_compute_dtype=dtype)


def _read_saved(folder, name: str, limit: int) -> bytes:
    """A file of the saved adapter folder: a regular file (never a link, FIFO or device) of at most ``limit`` bytes."""
    import os
    import stat

    path = os.path.join(str(folder), name)
    try:  # O_NOFOLLOW: a link is refused; O_NONBLOCK: a FIFO is never waited on
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Incorrect(f"the saved adapter has no {name}: keep the PeftModel itself in `peft_model` "
                        "(the check saves it with save_pretrained)") from None
    except OSError:
        raise Incorrect(f"{name} in the saved adapter is not a regular file") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        expect(stat.S_ISREG(st.st_mode), f"{name} in the saved adapter is not a regular file")
        expect(st.st_size <= limit, f"{name} is larger than {limit:,} bytes: use a smaller rank r")
        data = f.read(limit + 1)
    expect(len(data) <= limit, f"{name} is larger than {limit:,} bytes: use a smaller rank r")
    return data


@functools.lru_cache(maxsize=None)
def _lora_defaults() -> dict:
    """LoraConfig's defaults as adapter_config.json writes them (sets and tuples as lists)."""
    import json

    from peft import LoraConfig

    def plain(o):
        return sorted(o) if isinstance(o, (set, frozenset)) else str(o)
    return json.loads(json.dumps(LoraConfig().to_dict(), default=plain))


@functools.lru_cache(maxsize=None)
def reference_linear_layers() -> dict[str, tuple[int, int]]:
    """The course model's linear layers: full module name -> (in_features, out_features)."""
    return {name: (m.in_features, m.out_features) for name, m in reference_model().named_modules()
            if isinstance(m, torch.nn.Linear)}


def _adapted_layers(target_modules) -> list[str]:
    """The course model's linear layers that LoRA's ``target_modules`` selects, as peft matches them."""
    layers = reference_linear_layers()
    if isinstance(target_modules, str):
        import regex  # a dependency of transformers; unlike re, it can give up on a pathological pattern

        if target_modules == "all-linear":  # peft's shortcut: every linear layer but the output head
            head = reference_model().get_output_embeddings()
            return sorted(name for name, m in reference_model().named_modules() if name in layers and m is not head)
        expect(len(target_modules) <= 500, "target_modules is a very long pattern: give a list of names")
        try:
            found = [name for name in layers if regex.fullmatch(target_modules, name, timeout=0.05)]
        except (regex.error, TimeoutError, ValueError):
            raise Incorrect("target_modules is a pattern that is not valid, or too slow to match: give a list "
                            "of names such as ['q_proj', 'v_proj']") from None
        expect(found, f"target_modules {target_modules!r} matches no linear layer of the course model"[:300])
        return sorted(found)
    expect(isinstance(target_modules, list) and target_modules
           and all(isinstance(t, str) and t for t in target_modules),
           "the adapter's target_modules should be a list of module names, such as ['q_proj', 'v_proj']")
    found = set()
    for target in target_modules:
        hits = {name for name in layers if name == target or name.endswith("." + target)}
        expect(hits, f"the adapter's target_modules names {target!r}, which is no linear layer of the course "
                     "model: read the names from model.named_modules()"[:300])
        found |= hits
    return sorted(found)


def _lora_config(folder) -> dict:
    """adapter_config.json, checked: a LoRA adapter that the judge can rebuild on the course model."""
    import json
    import math
    import numbers

    try:
        config = json.loads(_read_saved(folder, ADAPTER_CONFIG, MAX_CONFIG_BYTES).decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise Incorrect(f"the saved adapter's {ADAPTER_CONFIG} is not JSON: save the adapter with save_pretrained") from None
    expect(isinstance(config, dict), f"the saved adapter's {ADAPTER_CONFIG} is not a dict of options")
    kind = config.get("peft_type")
    expect(kind == "LORA", f"that is a {str(kind)[:40]} adapter, not LoRA: the question trains LoRA matrices "
                           "(get_peft_model with a LoraConfig), not virtual tokens or other adapters")
    defaults = _lora_defaults()
    for key, value in config.items():
        expect(key in defaults, f"{ADAPTER_CONFIG} has an option this peft does not know ({str(key)[:40]!r}): "
                                "save the adapter with save_pretrained")
        if key not in LORA_OPTIONS | METADATA:
            expect(value == defaults[key],
                   f"the check rebuilds plain LoRA adapters (r, lora_alpha, target_modules, lora_dropout, "
                   f"use_rslora); leave `{key}` at its default")
    r = config.get("r", defaults["r"])
    expect(isinstance(r, int) and not isinstance(r, bool) and 0 < r <= MAX_RANK,
           f"the adapter's rank r should be a whole number from 1 to {MAX_RANK}")
    alpha = config.get("lora_alpha", defaults["lora_alpha"])
    expect(isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and math.isfinite(alpha) and alpha != 0,
           "the adapter's lora_alpha should be a finite, non-zero number")
    rslora = config.get("use_rslora", False)
    expect(isinstance(rslora, bool), "the adapter's use_rslora should be True or False")
    dropout = config.get("lora_dropout", 0.0)
    expect(isinstance(dropout, numbers.Real) and not isinstance(dropout, bool) and 0 <= dropout < 1,
           "the adapter's lora_dropout should be a number from 0 to 1")
    expect(config.get("bias", "none") in ("none", "all", "lora_only"),
           "the adapter's bias option should be 'none', 'all' or 'lora_only'")
    expect(config.get("task_type") in (None, "CAUSAL_LM"),
           "the adapter's task_type should be 'CAUSAL_LM' (a model that generates text)")
    layers = _adapted_layers(config.get("target_modules"))
    scaling = alpha / (math.sqrt(r) if rslora else r)
    return {"r": r, "lora_alpha": alpha, "use_rslora": rslora, "layers": layers, "scaling": scaling}


def _lora_tensors(folder, config: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """adapter_model.safetensors, checked: the A and B matrices of exactly the adapted layers, trained."""
    from safetensors.torch import load as load_tensors

    try:
        saved = load_tensors(_read_saved(folder, ADAPTER_WEIGHTS, MAX_WEIGHTS_BYTES))
    except Incorrect:
        raise
    except Exception:  # noqa: BLE001 - a malformed file is the answer's problem
        raise Incorrect(f"the saved adapter's {ADAPTER_WEIGHTS} cannot be read: save the adapter with "
                        "save_pretrained") from None
    r, shapes = config["r"], reference_linear_layers()
    want = {f"base_model.model.{layer}.lora_{ab}.weight": (layer, ab) for layer in config["layers"] for ab in "AB"}
    missing = sorted(set(want) - set(saved))
    expect(not missing, f"the saved adapter has no LoRA matrices for {len(missing)} of the layers its "
                        f"target_modules name (e.g. {missing[:1]}): it is not a LoRA adapter of those layers")
    extra = sorted(set(saved) - set(want))
    expect(not extra, f"the saved adapter holds tensors that are not LoRA matrices of its target layers "
                      f"(e.g. {str(min(extra, default=''))[:80]!r}): train a plain LoRA adapter")
    pairs, change = {}, 0.0
    for key, (layer, ab) in want.items():
        t = saved[key]
        n_in, n_out = shapes[layer]
        expect(t.dtype in WEIGHT_DTYPES, f"{key} is a {t.dtype} tensor: LoRA matrices are floating point")
        expect(tuple(t.shape) == ((r, n_in) if ab == "A" else (n_out, r)),
               f"{key} has shape {tuple(t.shape)}, which does not fit a rank-{r} LoRA of that layer "
               f"({n_out} x {n_in}): these matrices do not belong to this adapter")
        expect(bool(torch.isfinite(t).all()), f"{key} holds inf or nan: the training diverged (lower the "
                                               "learning rate)")
    for layer in config["layers"]:
        a = saved[f"base_model.model.{layer}.lora_A.weight"].float()
        b = saved[f"base_model.model.{layer}.lora_B.weight"].float()
        pairs[layer] = (a, b)
        change = max(change, config["scaling"] * float(torch.linalg.matrix_norm(b @ a)))
    expect(change > TRAINED_NORM,
           "the adapter was never trained: its LoRA update B @ A is still zero, as get_peft_model creates it "
           "(B starts at zeros). Run the training loop on `peft_model` before checking")
    return pairs


def adapter_model(adapter: AdapterFacts):
    """The judge's own QLoRA model: the course model in 4 bits as the learner's base was, with the saved LoRA.

    Reads the saved folder (config and matrices, checked by :func:`_lora_config` and :func:`_lora_tensors`)
    and builds the adapter with its own LoraConfig, so no other option of the learner's config is used.
    """
    from peft import LoraConfig, get_peft_model
    config = _lora_config(adapter.folder)
    pairs = _lora_tensors(adapter.folder, config)
    kept = torch.float32 if torch.float32 in adapter.base.dtypes else torch.bfloat16
    base = load_course_model(kept, quantization_config=_bnb_config(adapter.base.quantization_config))
    lora = LoraConfig(r=config["r"], lora_alpha=config["lora_alpha"], use_rslora=config["use_rslora"],
                      target_modules=config["layers"], lora_dropout=0.0, task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    inner = model.get_base_model()
    with torch.no_grad():
        for layer, (a, b) in pairs.items():
            module = inner.get_submodule(layer)
            module.lora_A["default"].weight.copy_(a)
            module.lora_B["default"].weight.copy_(b)
    return model.eval()


def adapter_answer(adapter: AdapterFacts, question: str = QUESTION) -> str:
    """Rebuild the learner's adapter on a fresh 4-bit course model (:func:`adapter_model`) and ask ``question``."""
    return greedy_answer(adapter_model(adapter), question)


def _check_q4(peft_model):
    expect(isinstance(peft_model, AdapterFacts),
           "`peft_model` should be the PeftModel you trained (get_peft_model(...) or PeftModel.from_pretrained)")
    base, ref = peft_model.base, reference_model()
    expect(is_model(base) and base.model_type == ref.config.model_type and isinstance(base.config, dict)
           and base.config.get("vocab_size") == ref.config.vocab_size,
           "the base model is not the course model: load it from `MODEL`")
    expect(base.has_4bit_layers and isinstance(base.quantization_config, dict)
           and base.quantization_config.get("load_in_4bit") is True,
           "the base model is not 4-bit: QLoRA trains on a base loaded with quantization_config=bnb_config")
    share = base.memory_footprint / reference_footprints()["fp32"] if isinstance(base.memory_footprint, int) else 1
    expect(0 < share < FOUR_BIT_SHARE,
           f"the base model takes {share:.0%} of the float32 model's memory, as a 16- or 32-bit model does, "
           "not a 4-bit one: load it with quantization_config=bnb_config"[:300])
    answer = adapter_answer(peft_model)
    expect(ANSWER in answer,
           "its greedy answer to the question does not name the capital from the training data yet: train "
           "more steps or with a higher learning rate (and on a CPU with avx512_bf16, do not generate with the "
           "model before or between training steps: see the lesson's 'Common gotcha')")


q1, q2, q3, q4 = QUESTIONS = numbered(
    Question("build the QLoRA quantization config: NF4, double quantization, bf16 compute", ["bnb_config"], _check_q1,
        hints=["BitsAndBytesConfig takes four 4-bit options: load_in_4bit, bnb_4bit_quant_type, "
               "bnb_4bit_use_double_quant, bnb_4bit_compute_dtype.",
               "The quant type is a string; the compute dtype is a torch dtype (or its name as a string).",
               "bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', "
               "bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)"]),
    Question("measure the 4-bit footprint as a fraction of float32", ["footprint_ratio"], _check_q2,
        hints=["Load the course model with quantization_config=bnb_config and dtype=torch.bfloat16 (for the "
               "layers that stay unquantized), on device_map=DEVICE.",
               "model.get_memory_footprint() gives bytes; `model_fp32` from the setup cell is the float32 model.",
               "footprint_ratio = model_4bit.get_memory_footprint() / model_fp32.get_memory_footprint()"]),
    Question("list the LoRA target modules of the course model", ["lora_targets"], _check_q3,
        hints=["The candidates are the linear layers inside the decoder layers; model.named_modules() lists them.",
               "Keep the part of each name after the last dot, once each; leave out the output head (lm_head).",
               "lora_targets = sorted({name.rsplit('.', 1)[-1] for name, m in model_fp32.named_modules() "
               "if isinstance(m, torch.nn.Linear) and name != 'lm_head'})"]),
    Question("train a LoRA adapter on the 4-bit model until it knows the capital of Zanthoria", ["peft_model"],
        _check_q4,
        hints=["Load a 4-bit base on DEVICE with bnb_4bit_compute_dtype=TRAIN_COMPUTE_DTYPE from the setup cell "
               "(float32 on a CPU: lesson section 2), prepare_model_for_kbit_training(base, "
               "use_gradient_checkpointing=False), then get_peft_model(base, LoraConfig(...)). Train with the "
               "`examples` and `collate` from the setup cell.",
               "Section 6 of the lesson: AdamW on the trainable parameters, lr=2e-3, one pass over the 32 examples "
               "in a shuffled order, batches of 4 (8 steps). Generate only after training.",
               "r=8, lora_alpha=16, lora_dropout=0.05, target_modules=['q_proj','k_proj','v_proj','o_proj'], "
               "task_type='CAUSAL_LM'; loop: loss = peft_model(**collate(batch)).loss; loss.backward(); "
               "optimizer.step(); optimizer.zero_grad()"]),
    notebook=NOTEBOOK,
)
