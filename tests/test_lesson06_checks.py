"""The lesson 06 checks accept right answers (however written) and reject known-wrong ones.

Question 4 needs a trained adapter: the module fixture trains one with the lesson's loop
(``finetune.train_adapter``: one pass over the 32 examples, about 15 s on 2 CPU cores), saves it,
and the tests reload it onto a fresh 4-bit base, which also shows that a saved adapter reproduces
the trained behaviour. One 4-bit model (``base_4bit``) serves the footprint and the untrained-adapter
tests, so the file loads a 4-bit model three times.
"""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from helpers import finetune
from helpers.checking import CORRECT, INCORRECT, NOT_ATTEMPTED, ____
from helpers.checks import lesson06 as L
from helpers.checks.common import reference_model

def status(question, **answers):
    return question.evaluate(answers).status


def four_bit(compute=torch.float32, **overrides):
    options = dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                   bnb_4bit_compute_dtype=compute)
    return BitsAndBytesConfig(**{**options, **overrides})


def load_4bit(path, config=None, dtype=torch.bfloat16):
    return AutoModelForCausalLM.from_pretrained(path, quantization_config=config or four_bit(), dtype=dtype,
                                                device_map="cpu")


# --------------------------------------------------------------------------- q1

def test_q1_right_answers():
    assert status(L.q1, bnb_config=four_bit(torch.bfloat16)) == CORRECT
    assert status(L.q1, bnb_config=four_bit("bfloat16")) == CORRECT  # the dtype as a string


@pytest.mark.parametrize("config", [
    {"bnb_4bit_quant_type": "fp4"},
    {"bnb_4bit_use_double_quant": False},
    {"bnb_4bit_compute_dtype": torch.float16},
    {"load_in_4bit": False, "load_in_8bit": True},
])
def test_q1_wrong_answers(config):
    assert status(L.q1, bnb_config=four_bit(torch.bfloat16, **config)) == INCORRECT


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
    "all-linear",
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
    assert status(L.q4, peft_model=untrained) == INCORRECT
    fp32_base = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32), folder)
    assert status(L.q4, peft_model=fp32_base) == INCORRECT                   # not QLoRA: the base is not 4-bit
    assert status(L.q4, peft_model=reference_model()) == INCORRECT           # not a PeftModel at all
    assert status(L.q4, peft_model=____) == NOT_ATTEMPTED


def test_checking_q4_leaves_the_model_as_it_was(trained_adapter):
    model, _ = trained_adapter
    flags = [m.training for m in model.modules()]
    L.q4.evaluate({"peft_model": model})
    assert [m.training for m in model.modules()] == flags
