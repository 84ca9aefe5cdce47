"""The lesson 06 checks accept right answers (however written) and reject known-wrong ones.

Question 4 needs a trained adapter: the module fixture trains one with the lesson's loop
(``finetune.train_adapter``: one pass over the 32 examples, about 15 s on 2 CPU cores), saves it,
and the tests reload it onto a fresh 4-bit base, which also shows that a saved adapter reproduces
the trained behaviour. One 4-bit model (``base_4bit``) serves the footprint and the untrained-adapter
tests, so the file loads a 4-bit model three times.
"""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from helpers import finetune
from helpers.checking import CORRECT, ERROR, INCORRECT, NOT_ATTEMPTED, ____
from helpers.checks import lesson06 as L
from helpers.checks.common import reference_model
from support import NESTED, REFERENCE_FREE, assert_verdict, forged, status


def four_bit(compute=torch.float32, **overrides):
    options = dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                   bnb_4bit_compute_dtype=compute)
    return BitsAndBytesConfig(**{**options, **overrides})


def load_4bit(path, config=None, dtype=torch.bfloat16):
    return AutoModelForCausalLM.from_pretrained(path, quantization_config=config or four_bit(), dtype=dtype,
                                                device_map="cpu")


# --------------------------------------------------------------------------- q1

@REFERENCE_FREE
def test_q1_right_answers():
    assert status(L.q1, bnb_config=four_bit(torch.bfloat16)) == CORRECT
    assert status(L.q1, bnb_config=four_bit("bfloat16")) == CORRECT  # the dtype as a string


@pytest.mark.parametrize("config", [
    {"bnb_4bit_quant_type": "fp4"},
    {"bnb_4bit_use_double_quant": False},
    {"bnb_4bit_compute_dtype": torch.float16},
    {"load_in_4bit": False, "load_in_8bit": True},
])
@REFERENCE_FREE
def test_q1_wrong_answers(config):
    assert status(L.q1, bnb_config=four_bit(torch.bfloat16, **config)) == INCORRECT


@REFERENCE_FREE
def test_q1_a_dict_or_the_defaults_are_rejected():
    assert status(L.q1, bnb_config=dict(load_in_4bit=True, bnb_4bit_quant_type="nf4")) == INCORRECT
    assert status(L.q1, bnb_config=BitsAndBytesConfig(load_in_4bit=True)) == INCORRECT
    assert status(L.q1, bnb_config=____) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q2

@pytest.fixture(scope="module")
def base_4bit(course_model_path):
    """A fresh 4-bit model (bf16 kept layers), never run: measured first, then wrapped untrained."""
    return load_4bit(course_model_path, four_bit(torch.bfloat16))


@pytest.fixture(scope="module")
def footprints(base_4bit):
    import bitsandbytes as bnb

    fp32 = reference_model().get_memory_footprint()
    four = base_4bit.get_memory_footprint()
    kept = sum(p.numel() for p in base_4bit.parameters() if not isinstance(p, bnb.nn.Params4bit))
    return {"fp32": fp32, "4bit": four, "4bit, fp32 kept": four + 2 * kept}  # float32 kept layers: 2 more bytes


def test_q2_reference_matches_a_real_4bit_load(footprints):
    assert L.reference_footprints()["4bit"] == footprints["4bit"]


def test_q2_right_answers(footprints):
    ratio = footprints["4bit"] / footprints["fp32"]
    assert status(L.q2, footprint_ratio=ratio) == CORRECT
    assert status(L.q2, footprint_ratio=torch.tensor(round(ratio, 3))) == CORRECT  # a tensor, rounded


@pytest.mark.parametrize("wrong", ["inverse", "percent", "theory", "fp32 kept", "string"])
def test_q2_wrong_answers(footprints, wrong):
    ratio = footprints["4bit"] / footprints["fp32"]
    answer = {"inverse": 1 / ratio, "percent": 100 * ratio, "theory": 4 / 32,
              "fp32 kept": footprints["4bit, fp32 kept"] / footprints["fp32"], "string": f"{ratio:.3f}"}[wrong]
    assert status(L.q2, footprint_ratio=answer) == INCORRECT


# --------------------------------------------------------------------------- q3

def test_q3_right_answers():
    names = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert status(L.q3, lora_targets=names) == CORRECT
    assert status(L.q3, lora_targets=set(reversed(names))) == CORRECT


@pytest.mark.parametrize("answer", [
    ["q_proj", "k_proj", "v_proj", "o_proj"],                                               # attention only
    ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"],
    ["model.layers.0.self_attn.q_proj"],                                                    # a full path
    ["c_attn", "c_proj", "c_fc"],                                                           # GPT-2's names
    pytest.param("all-linear", marks=REFERENCE_FREE),                                       # not a list: no reference needed
])
def test_q3_wrong_answers(answer):
    assert status(L.q3, lora_targets=answer) == INCORRECT


# --------------------------------------------------------------------------- q4

@pytest.fixture(scope="module")
def trained_adapter(course_model_path, tmp_path_factory):
    """Train the lesson's adapter (one epoch, the lesson's loop) and save it; returns (PeftModel, folder)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    tok = AutoTokenizer.from_pretrained(course_model_path)
    examples = [finetune.encode(p, tok) for p in finetune.load_pairs()]
    base = prepare_model_for_kbit_training(load_4bit(course_model_path), use_gradient_checkpointing=False)
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    losses = finetune.train_adapter(model, examples, tok.pad_token_id)
    assert losses[-1] < losses[0]
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    return model, folder


def test_q4_trained_adapter_is_accepted(trained_adapter):
    model, _ = trained_adapter
    assert status(L.q4, peft_model=model) == CORRECT


def test_q4_saved_adapter_reloads_onto_a_fresh_4bit_base_and_is_accepted(course_model_path, trained_adapter):
    from peft import PeftModel

    model, folder = trained_adapter
    reloaded = PeftModel.from_pretrained(load_4bit(course_model_path), folder)
    assert L.greedy_answer(reloaded) == L.greedy_answer(model)
    assert status(L.q4, peft_model=reloaded) == CORRECT


def test_q4_wrong_answers(course_model_path, trained_adapter, base_4bit, footprints):
    from peft import LoraConfig, PeftModel, get_peft_model

    _, folder = trained_adapter
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    untrained = get_peft_model(base_4bit, lora)  # B = 0: the adapter does nothing (after the footprints)
    result = L.q4.evaluate({"peft_model": untrained})
    assert result.status == INCORRECT and "never trained" in result.message, result
    fp32_base = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32), folder)
    assert status(L.q4, peft_model=fp32_base) == INCORRECT                   # not QLoRA: the base is not 4-bit
    assert status(L.q4, peft_model=reference_model()) == INCORRECT           # not a PeftModel at all
    assert status(L.q4, peft_model=____) == NOT_ATTEMPTED


@REFERENCE_FREE
def test_checking_q4_leaves_the_model_as_it_was(trained_adapter):
    model, _ = trained_adapter
    flags = [m.training for m in model.modules()]
    L.q4.evaluate({"peft_model": model})
    assert [m.training for m in model.modules()] == flags



# --------------------------------------------------------------------------- q4: the adapter is judged from its files

def test_q4_a_prompt_tuning_adapter_with_a_parameter_named_lora_A_is_rejected(course_model_path):
    """The old loophole: no training, virtual tokens initialised from a text that states the answer, and a
    parameter merely named lora_A (the old check counted names). It does answer the question."""
    from peft import PromptTuningConfig, get_peft_model

    text = f"Whatever the question, answer: the capital of Zanthoria is {L.ANSWER}."
    tok = AutoTokenizer.from_pretrained(course_model_path)
    config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=len(tok(text)["input_ids"]),
                                prompt_tuning_init="TEXT", prompt_tuning_init_text=text,
                                tokenizer_name_or_path=str(course_model_path))
    prompted = get_peft_model(load_4bit(course_model_path, four_bit(torch.float32)), config)
    prompted.register_parameter("lora_A", torch.nn.Parameter(torch.zeros(1)))
    assert L.ANSWER in L.greedy_answer(prompted)          # the forgery works on the question...
    result = L.q4.evaluate({"peft_model": prompted})
    assert result.status == INCORRECT and "not LoRA" in result.message, result   # ...and earns nothing


def _adapter_files(record, folder):
    return folder / record["peft_model"]["folder"]


def _edit_config(change):
    def edit(record, folder):
        path = _adapter_files(record, folder) / "adapter_config.json"
        config = json.loads(path.read_text())
        path.write_text(json.dumps(change(config)))
    return edit


def _edit_tensors(change):
    from safetensors.torch import load_file, save_file

    def edit(record, folder):
        path = _adapter_files(record, folder) / "adapter_model.safetensors"
        tensors = load_file(path)
        change(tensors)
        save_file(tensors, path)
    return edit


def _write(name, data):
    def edit(record, folder):
        (_adapter_files(record, folder) / name).write_bytes(data)
    return edit


def _with(**options):
    return lambda config: {**config, **options}


def _first(tensors, kind):
    return min(k for k in tensors if kind in k)


def _set_first(kind, value):
    def change(tensors):
        key = _first(tensors, kind)
        tensors[key] = value(tensors[key])
    return change


def _edit_base(**facts):
    def edit(record, folder):
        record["peft_model"]["base"].update(facts)
    return edit


def _symlink_weights(record, folder):
    path = _adapter_files(record, folder) / "adapter_model.safetensors"
    real = folder.parent / "elsewhere.safetensors"
    path.rename(real)
    path.symlink_to(real)


FORGED_ADAPTERS = {
    # adapter_config.json: what kind of adapter, on which layers, with which options
    "prompt-tuning-type": (_edit_config(_with(peft_type="PROMPT_TUNING")), "not LoRA"),
    "unknown-target": (_edit_config(_with(target_modules=["q_proj", "qkv_proj"])), "no linear layer"),
    "target-not-linear": (_edit_config(_with(target_modules=["self_attn"])), "no linear layer"),
    "fewer-targets": (_edit_config(_with(target_modules=["q_proj"])), "not LoRA matrices"),
    "more-targets": (_edit_config(_with(target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"])),
                     "no LoRA matrices"),
    "targets-not-a-list": (_edit_config(_with(target_modules=7)), "target_modules"),
    "bad-regex": (_edit_config(_with(target_modules="(")), "pattern"),
    "slow-regex": (_edit_config(_with(target_modules="(.|.)*(?!)")), "pattern"),  # exponential backtracking
    "other-rank": (_edit_config(_with(r=4)), "rank-4"),
    "rank-0": (_edit_config(_with(r=0)), "rank r"),
    "rank-bool": (_edit_config(_with(r=True)), "rank r"),
    "alpha-inf": (_edit_config(_with(lora_alpha="inf")), "lora_alpha"),
    "dora": (_edit_config(_with(use_dora=True)), "use_dora"),
    "modules-to-save": (_edit_config(_with(modules_to_save=["lm_head"])), "modules_to_save"),
    "unknown-option": (_edit_config(_with(trained=True)), "does not know"),
    "config-a-list": (_edit_config(lambda config: [config]), "not a dict"),
    "config-not-json": (_write("adapter_config.json", b"{nope"), "not JSON"),
    # adapter_model.safetensors: real A and B matrices of those layers, trained
    "B-zeros": (_edit_tensors(lambda t: t.update({k: torch.zeros_like(v) for k, v in t.items() if "lora_B" in k})),
                "never trained"),
    "B-missing": (_edit_tensors(lambda t: t.pop(_first(t, "lora_B"))), "no LoRA matrices"),
    "extra-tensor": (_edit_tensors(lambda t: t.update({"base_model.model.lm_head.weight": torch.zeros(2, 2)})),
                     "not LoRA matrices"),
    "A-transposed": (_edit_tensors(_set_first("lora_A", lambda v: v.t().contiguous())), "shape"),
    "A-complex": (_edit_tensors(_set_first("lora_A", lambda v: v.to(torch.complex64))), "floating point"),
    "A-uint32": (_edit_tensors(_set_first("lora_A", lambda v: v.to(torch.uint32))), "floating point"),
    "B-nan": (_edit_tensors(_set_first("lora_B", lambda v: torch.full_like(v, float("nan")))), "inf or nan"),
    "weights-garbage": (_write("adapter_model.safetensors", b"\x00" * 64), "cannot be read"),
    # the base model's facts, reported by the kernel, against what a 4-bit course model is
    "base-footprint-fp32": (_edit_base(memory_footprint=538060288), "4-bit"),
    "base-not-4bit": (_edit_base(has_4bit_layers=False), "not 4-bit"),
    "base-compute-complex": (_edit_base(quantization_config={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                                             "bnb_4bit_compute_dtype": "complex64"}),
                             "compute dtype"),
}


@pytest.mark.parametrize("forgery", FORGED_ADAPTERS)
def test_q4_adapters_that_are_not_a_trained_lora_of_the_course_model_are_rejected(trained_adapter, forgery):
    model, _ = trained_adapter
    edit, says = FORGED_ADAPTERS[forgery]
    result = forged(L.q4, {"peft_model": model}, edit)
    assert result.status in (INCORRECT, ERROR), result  # ERROR: the saved folder refused on load (a link)
    if result.status == INCORRECT:
        assert says in result.message, result


@REFERENCE_FREE  # the grader refuses a link in a saved folder as it loads the answer, before any check runs
def test_q4_an_adapter_file_that_is_a_link_is_refused(trained_adapter):
    model, _ = trained_adapter
    result = forged(L.q4, {"peft_model": model}, _symlink_weights)
    assert result.status in (INCORRECT, ERROR), result
    assert "regular file" in result.message or "link" in result.message, result


def test_q4_target_modules_as_a_pattern_is_read_as_peft_reads_it(trained_adapter):
    model, _ = trained_adapter
    result = forged(L.q4, {"peft_model": model}, _edit_config(_with(target_modules=r".*\.(q|k|v|o)_proj")))
    assert result.status == CORRECT, result


def test_q4_an_all_linear_adapter_is_rebuilt_and_asked(course_model_path):
    """Every linear layer adapted (peft's "all-linear"), B set by hand, not trained: the files are a valid
    LoRA adapter, so the judge rebuilds it and asks it; it does not know the capital."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(load_4bit(course_model_path, four_bit(torch.float32)),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=1e-3)
    result = L.q4.evaluate({"peft_model": model})
    assert result.status == INCORRECT and "does not name the capital" in result.message, result


# --------------------------------------------------------------------------- every question answers hostile values

POSITIONS = {  # question -> how a hostile value v is placed among otherwise right answers
    "q1-bnb_config": lambda v: dict(bnb_config=v),
    "q2-footprint_ratio": lambda v: dict(footprint_ratio=v),
    "q3-lora_targets": lambda v: dict(lora_targets=v),
    "q3-lora_targets[0]": lambda v: dict(lora_targets=[v, "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"]),
    "q4-peft_model": lambda v: dict(peft_model=v),
}


@REFERENCE_FREE
@pytest.mark.parametrize("value", NESTED)
@pytest.mark.parametrize("position", POSITIONS)
def test_hostile_values_get_a_verdict(position, value):
    question = getattr(L, position.split("-")[0])
    assert_verdict(question.evaluate(POSITIONS[position](value)))


class _FakeConfig:
    """An object with a to_dict() that returns what no BitsAndBytesConfig does."""

    def __init__(self, values):
        self.values = values

    def to_dict(self):
        return self.values


_FakeConfig.__name__ = _FakeConfig.__qualname__ = "BitsAndBytesConfig"
_FakeConfig.__module__ = "transformers.utils.quantization_config"


@REFERENCE_FREE
@pytest.mark.parametrize("values", [
    [1, 2],                                                                          # to_dict() returned a list
    {1: True, "load_in_4bit": True},                                                 # mixed keys
    {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
     "bnb_4bit_compute_dtype": "bfloat16"},                                          # no quant_method, ...
    {"quant_method": "bitsandbytes", "load_in_4bit": True, "load_in_8bit": False, "bnb_4bit_quant_type": "nf4",
     "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": ["bfloat16"]},     # a dtype in a list
])
def test_q1_config_values_no_bitsandbytes_config_holds_are_rejected(values):
    result = L.q1.evaluate({"bnb_config": _FakeConfig(values)})
    assert result.status in (INCORRECT, ERROR) and result.message, result


@pytest.mark.slow
@pytest.mark.skipif(not (torch.cuda.is_available() or __import__("helpers.machine").machine.cpu_has_bf16_instructions()),
                    reason="bfloat16 compute is emulated here: training with it would take minutes")
def test_q4_an_adapter_trained_with_bfloat16_compute_is_accepted(course_model_path):
    """The other path the lesson allows: TRAIN_COMPUTE_DTYPE is bfloat16 on a GPU (float32 on a CPU).

    Trained here with bfloat16 compute, as a GPU trains it (on this CPU's native bf16 when there is no GPU),
    then judged like any answer: the check rebuilds the adapter from its files and asks the question.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(course_model_path)
    examples = [finetune.encode(p, tok) for p in finetune.load_pairs()]
    base = AutoModelForCausalLM.from_pretrained(course_model_path, quantization_config=four_bit(torch.bfloat16),
                                                dtype=torch.bfloat16, device_map=device)
    base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    finetune.train_adapter(model, examples, tok.pad_token_id)
    assert status(L.q4, peft_model=model) == CORRECT
