"""The lesson 05 checks accept right answers (written two ways) and reject known-wrong ones."""

from __future__ import annotations

import pytest
import torch

from helpers.checking import CORRECT, INCORRECT, NOT_ATTEMPTED, ____
from helpers.checks import lesson05 as L
from helpers.device import put_on_small_gpu
from helpers.checks.common import reference_model, reference_tokenizer
from support import NESTED, REFERENCE_FREE, assert_verdict, forged, status


@pytest.fixture(scope="module")
def models(course_model_path, tiny_model_path):
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig
    load = AutoModelForCausalLM.from_pretrained
    random_bf16 = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(course_model_path),
                                                   dtype=torch.bfloat16)
    return {
        "fp32": reference_model(),
        "bf16": load(course_model_path, dtype=torch.bfloat16),
        "bf16_str": load(course_model_path, dtype="bfloat16"),
        "fp16": load(course_model_path, dtype=torch.float16),
        "nf4": load(course_model_path, dtype=torch.bfloat16,
                    quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")),
        "tiny": load(tiny_model_path),
        "random_bf16": random_bf16,
        "cast_bf16": load(course_model_path, dtype=torch.float32).to(torch.bfloat16),  # buffers in bf16 too
    }


def _tok(path, **kw):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(path, **kw)



# ---------------------------------------------------------------- q1: fixed loading snippet

def test_q1_right(models):
    assert status(L.q1, fixed_model=models["bf16"]) == CORRECT
    assert status(L.q1, fixed_model=models["bf16_str"]) == CORRECT  # dtype="bfloat16" written as a string


@pytest.mark.parametrize("wrong", ["fp32", "tiny", "random_bf16", "nf4"])
def test_q1_wrong_models(models, wrong):
    assert status(L.q1, fixed_model=models[wrong]) == INCORRECT


@REFERENCE_FREE
@pytest.mark.parametrize("wrong", [None, "smollm2", 0])
def test_q1_wrong_values(wrong):
    assert status(L.q1, fixed_model=wrong) == INCORRECT


def test_q1_missing():
    assert status(L.q1) == NOT_ATTEMPTED
    assert status(L.q1, fixed_model=____) == NOT_ATTEMPTED


# ---------------------------------------------------------------- q2: inputs for generate

def test_q2_right():
    tok = reference_tokenizer()
    assert status(L.q2, prompt_inputs=tok(L.PROMPT, return_tensors="pt")) == CORRECT
    ids = tok(L.PROMPT)["input_ids"]
    assert status(L.q2, prompt_inputs={"input_ids": torch.tensor([ids])}) == CORRECT  # a plain dict, no mask


def test_q2_wrong():
    tok = reference_tokenizer()
    assert status(L.q2, prompt_inputs=tok(L.PROMPT)) == INCORRECT                      # lists: the snippet's bug
    assert status(L.q2, prompt_inputs={"input_ids": torch.tensor(tok(L.PROMPT)["input_ids"])}) == INCORRECT  # 1-D
    assert status(L.q2, prompt_inputs=tok("The capital of Spain is", return_tensors="pt")) == INCORRECT
    assert status(L.q2, prompt_inputs=L.PROMPT) == INCORRECT
    assert status(L.q2, prompt_inputs=tok(L.PROMPT, return_tensors="pt")["input_ids"]) == INCORRECT  # not a dict


def test_q2_missing():
    assert status(L.q2) == NOT_ATTEMPTED


# ---------------------------------------------------------------- q3: a tokenizer for batches

def _nopad(path):
    tok = _tok(path)
    tok.pad_token = None
    return tok


def test_q3_right(course_model_path):
    tok = _nopad(course_model_path)
    tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    assert status(L.q3, batch_tokenizer=tok) == CORRECT
    # written differently: load it with padding_side= and give it the <|endoftext|> token as pad
    other = _tok(course_model_path, padding_side="left")
    other.pad_token = "<|endoftext|>"
    assert other.pad_token_id is not None and other.pad_token_id != other.eos_token_id
    assert status(L.q3, batch_tokenizer=other) == CORRECT


def test_q3_wrong(course_model_path):
    assert status(L.q3, batch_tokenizer=_nopad(course_model_path)) == INCORRECT          # still no pad token
    right_padded = _nopad(course_model_path)
    right_padded.pad_token = right_padded.eos_token                                      # pad, but on the right
    assert right_padded.padding_side == "right"
    assert status(L.q3, batch_tokenizer=right_padded) == INCORRECT
    new_pad = _nopad(course_model_path)
    new_pad.add_special_tokens({"pad_token": "[PAD]"})                                   # a token the model lacks
    new_pad.padding_side = "left"
    assert status(L.q3, batch_tokenizer=new_pad) == INCORRECT
    assert status(L.q3, batch_tokenizer=None) == INCORRECT
    assert status(L.q3, batch_tokenizer="left") == INCORRECT


def test_q3_missing():
    assert status(L.q3) == NOT_ATTEMPTED


# ---------------------------------------------------------------- q4: out-of-memory recovery

def test_q4_small_gpu_raises_the_cuda_oom_class(models):
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory"):
        put_on_small_gpu(models["fp32"])
    assert put_on_small_gpu(models["bf16"]) is models["bf16"]


def test_q4_right(models):
    assert status(L.q4, model_fit=models["bf16"]) == CORRECT
    assert status(L.q4, model_fit=models["fp16"]) == CORRECT  # the other 16-bit dtype is the same rung


def test_q4_wrong(models):
    assert status(L.q4, model_fit=models["fp32"]) == INCORRECT         # does not fit
    assert status(L.q4, model_fit=models["nf4"]) == INCORRECT          # fits, but skips a rung
    assert status(L.q4, model_fit=models["tiny"]) == INCORRECT         # fits, but not the course model
    assert status(L.q4, model_fit=models["random_bf16"]) == INCORRECT  # fits, random weights
    assert status(L.q4, model_fit=None) == INCORRECT


def test_q4_missing():
    assert status(L.q4) == NOT_ATTEMPTED


# ---------------------------------------------------------------- q5: the seeds' error types

def test_q5_right():
    assert status(L.q5, lists_error=AttributeError, offline_error=OSError, cpu_oom_error=RuntimeError) == CORRECT
    assert status(L.q5, lists_error="AttributeError", offline_error="builtins.OSError",
                  cpu_oom_error=RuntimeError("an instance is fine too")) == CORRECT


def test_q5_wrong():
    assert status(L.q5, lists_error=TypeError, offline_error=ConnectionError,
                  cpu_oom_error=torch.OutOfMemoryError) == INCORRECT  # the seed lesson's answers
    assert status(L.q5, lists_error=AttributeError, offline_error=OSError,
                  cpu_oom_error="OutOfMemoryError") == INCORRECT      # the CUDA class, not the CPU one
    assert status(L.q5, lists_error=AttributeError, offline_error=Exception, cpu_oom_error=RuntimeError) == INCORRECT
    assert status(L.q5, lists_error=None, offline_error=OSError, cpu_oom_error=RuntimeError) == INCORRECT
    assert status(L.q5, lists_error=3, offline_error=OSError, cpu_oom_error=RuntimeError) == INCORRECT


def test_q5_messages_name_the_seed_trap():
    r = L.q5.evaluate(dict(lists_error=AttributeError, offline_error=ConnectionError, cpu_oom_error=RuntimeError))
    assert r.status == INCORRECT and "seed" in r.message and "OSError" not in r.message


def test_q5_missing():
    assert status(L.q5, lists_error=AttributeError, offline_error=OSError) == NOT_ATTEMPTED


# ---------------------------------------------------------------- answers from a model on a GPU

def test_q2_accepts_a_mask_left_out_as_none():
    ids = reference_tokenizer()(L.PROMPT, return_tensors="pt")["input_ids"]
    assert status(L.q2, prompt_inputs={"input_ids": ids, "attention_mask": None}) == CORRECT


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_q2_accepts_inputs_moved_to_the_gpu():
    inputs = reference_tokenizer()(L.PROMPT, return_tensors="pt").to("cuda")
    assert status(L.q2, prompt_inputs=inputs) == CORRECT


# ---------------------------------------------------------------- facts the judge verifies

def test_q1_q4_a_bf16_model_cast_after_loading_is_accepted(models):
    assert status(L.q1, fixed_model=models["cast_bf16"]) == CORRECT
    assert status(L.q4, model_fit=models["cast_bf16"]) == CORRECT


def _claim(dtype, footprint=None):
    def edit(record, folder):
        model = next(iter(record.values()))
        model["dtypes"] = [dtype]
        model["memory_footprint"] = footprint if footprint is not None else model["memory_footprint"] // 2
    return edit


@pytest.mark.parametrize("question, var", [(L.q1, "fixed_model"), (L.q4, "model_fit")])
def test_q1_q4_a_float32_model_that_claims_16_bits_is_rejected(models, question, var):
    """A record saying bfloat16 (and half the footprint) about a float32 model: its embedding says otherwise."""
    result = forged(question, {var: models["fp32"]}, _claim("bfloat16"))
    assert result.status == INCORRECT and "not the checkpoint's in bfloat16" in result.message, result
    result = forged(question, {var: models["fp32"]}, _claim("float16"))
    assert result.status == INCORRECT and "float16" in result.message, result


@pytest.mark.parametrize("question, var", [(L.q1, "fixed_model"), (L.q4, "model_fit")])
def test_q1_q4_a_footprint_the_model_does_not_have_is_rejected(models, question, var):
    result = forged(question, {var: models["bf16"]}, _claim("bfloat16", footprint=1))
    assert result.status == INCORRECT and "get_memory_footprint" in result.message, result
    assert forged(question, {var: models["bf16"]}, lambda record, folder: None).status == CORRECT


# ---------------------------------------------------------------- q2: tensors of every kind

@pytest.mark.parametrize("ids_dtype", [torch.uint32, torch.float32, torch.complex64, torch.bool,
                                       torch.float8_e4m3fn])
def test_q2_ids_that_are_not_integers_are_rejected(ids_dtype):
    """uint32, float, complex and float8 ids once crashed the check (promotion, embedding, comparison)."""
    ids = reference_tokenizer()(L.PROMPT, return_tensors="pt")["input_ids"]
    result = L.q2.evaluate({"prompt_inputs": {"input_ids": ids.to(ids_dtype)}})
    assert result.status == INCORRECT and "input_ids" in result.message, result


@pytest.mark.parametrize("mask, right", [
    (lambda ids: torch.ones(ids.shape), True),                          # a float mask of ones: generate takes it
    (lambda ids: torch.ones(ids.shape, dtype=torch.bool), True),
    (lambda ids: torch.zeros_like(ids), False),                         # attends to nothing
    (lambda ids: torch.full_like(ids, 7), False),
    (lambda ids: torch.full(ids.shape, float("nan")), False),
    (lambda ids: torch.ones(ids.shape, dtype=torch.complex64), False),
    (lambda ids: torch.ones(ids.shape, dtype=torch.uint32), False),
])
def test_q2_attention_masks(mask, right):
    ids = reference_tokenizer()(L.PROMPT, return_tensors="pt")["input_ids"]
    result = L.q2.evaluate({"prompt_inputs": {"input_ids": ids.int(), "attention_mask": mask(ids)}})
    assert result.status == (CORRECT if right else INCORRECT), result


def test_q2_keys_generate_does_not_take_are_rejected():
    inputs = dict(reference_tokenizer()(L.PROMPT, return_tensors="pt"))
    inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])  # generate() raises on it for this model
    result = L.q2.evaluate({"prompt_inputs": inputs})
    assert result.status == INCORRECT and "token_type_ids" in result.message, result


# ---------------------------------------------------------------- every question answers hostile values

POSITIONS = {  # question -> how a hostile value v is placed among otherwise right answers
    "q1-fixed_model": lambda v: dict(fixed_model=v),
    "q2-prompt_inputs": lambda v: dict(prompt_inputs=v),
    "q2-input_ids": lambda v: dict(prompt_inputs={"input_ids": v}),
    "q2-attention_mask": lambda v: dict(prompt_inputs={
        "input_ids": reference_tokenizer()(L.PROMPT, return_tensors="pt")["input_ids"], "attention_mask": v}),
    "q3-batch_tokenizer": lambda v: dict(batch_tokenizer=v),
    "q4-model_fit": lambda v: dict(model_fit=v),
    "q5-lists_error": lambda v: dict(lists_error=v, offline_error=OSError, cpu_oom_error=RuntimeError),
    "q5-offline_error": lambda v: dict(lists_error=AttributeError, offline_error=v, cpu_oom_error=RuntimeError),
    "q5-cpu_oom_error": lambda v: dict(lists_error=AttributeError, offline_error=OSError, cpu_oom_error=v),
}


@REFERENCE_FREE
@pytest.mark.parametrize("value", NESTED)
@pytest.mark.parametrize("position", POSITIONS)
def test_hostile_values_get_a_verdict(position, value):
    question = getattr(L, position.split("-")[0])
    assert_verdict(question.evaluate(POSITIONS[position](value)))
