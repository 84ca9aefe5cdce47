"""The lesson 03 checks accept right answers (however written) and reject known-wrong ones."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers.checking import CORRECT, INCORRECT, NOT_ATTEMPTED, ____
from helpers.checks import lesson03
from helpers.checks.common import reference_model


@pytest.fixture(scope="module")
def fp32(course_model_path):
    return reference_model()


@pytest.fixture(scope="module")
def bf16(course_model_path):
    return AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def fp16(course_model_path):
    return AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float16)


@pytest.fixture(scope="module")
def logit_diffs(course_model_path, fp32, bf16, fp16):
    """|dtype - fp32| logit differences on the question's prompt, computed here independently."""
    tok = AutoTokenizer.from_pretrained(course_model_path)
    enc = tok(lesson03.PROMPT, return_tensors="pt")
    with torch.no_grad():
        ref = fp32(**enc).logits
        d16 = (fp16(**enc).logits.float() - ref).abs()
        db16 = (bf16(**enc).logits.float() - ref).abs()
    return {"fp16": d16, "bf16": db16}


def status(question, **answers):
    return question.evaluate(answers).status


# --------------------------------------------------------------------------- q1

def test_q1_right_answers(fp32, bf16, course_model_path):
    ratio = bf16.get_memory_footprint() / fp32.get_memory_footprint()
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio=ratio) == CORRECT
    # written differently: a NumPy scalar, a tensor, rounded to 4 digits; a model cast after loading
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio=np.float32(ratio)) == CORRECT
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio=torch.tensor(round(ratio, 4))) == CORRECT
    cast = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32).to(torch.bfloat16)
    assert status(lesson03.q1, bf16_model=cast,
                  bf16_memory_ratio=cast.get_memory_footprint() / fp32.get_memory_footprint()) == CORRECT


def test_q1_wrong_answers(fp32, bf16, fp16, tiny):
    ratio = bf16.get_memory_footprint() / fp32.get_memory_footprint()
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio=1 / ratio) == INCORRECT   # upside down
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio=0.25) == INCORRECT        # a 4-bit guess
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio="0.5") == INCORRECT       # a string
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio=None) == INCORRECT
    assert status(lesson03.q1, bf16_model=fp32, bf16_memory_ratio=1.0) == INCORRECT          # float32 model
    assert status(lesson03.q1, bf16_model=fp16, bf16_memory_ratio=ratio) == INCORRECT        # wrong 16-bit type
    assert status(lesson03.q1, bf16_model=tiny, bf16_memory_ratio=ratio) == INCORRECT        # not the course model
    result = lesson03.q1.evaluate({"bf16_model": fp16, "bf16_memory_ratio": ratio})
    assert "bfloat16" in result.message and f"{ratio:.4f}" not in result.message


def test_q1_missing(bf16):
    assert status(lesson03.q1) == NOT_ATTEMPTED
    assert status(lesson03.q1, bf16_model=bf16, bf16_memory_ratio=____) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q2

def test_q2_right_answers(logit_diffs):
    d = logit_diffs["fp16"]
    assert status(lesson03.q2, max_logit_diff=d.max().item()) == CORRECT
    assert status(lesson03.q2, max_logit_diff=d.max()) == CORRECT                  # a 0-d tensor
    assert status(lesson03.q2, max_logit_diff=round(d.max().item(), 2)) == CORRECT  # rounded


def test_q2_wrong_answers(logit_diffs):
    d, db = logit_diffs["fp16"], logit_diffs["bf16"]
    cases = {
        "zero": 0.0,                                   # a model compared with itself
        "mean": d.mean().item(),                       # mean instead of max
        "bf16": db.max().item(),                       # the other 16-bit type
        "negative": -d.max().item(),
        "string": "0.3",
        "none": None,
        "vector": d.amax(dim=-1),                      # one max per position
    }
    for label, value in cases.items():
        assert status(lesson03.q2, max_logit_diff=value) == INCORRECT, label
    last = d[0, -1].max().item()
    if abs(last - d.max().item()) > 0.05 * d.max().item():   # only meaningful where they differ
        assert status(lesson03.q2, max_logit_diff=last) == INCORRECT


def test_q2_missing():
    assert status(lesson03.q2) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q3

def test_q3_right_answers(course_model_path):
    want = AutoModelForCausalLM.from_pretrained(course_model_path, dtype="auto").dtype
    name = str(want).removeprefix("torch.")
    for value in (want, name, f"torch.{name}"):
        assert status(lesson03.q3, auto_dtype=value) == CORRECT, value


def test_q3_wrong_answers():
    for value in ("auto", torch.bfloat16, "float16", "bf16", None, 4):
        assert status(lesson03.q3, auto_dtype=value) == INCORRECT, value


def test_q3_missing():
    assert status(lesson03.q3) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q4

def test_q4_right_answers(fp16):
    measured = fp16.get_memory_footprint() / fp16.num_parameters()
    assert status(lesson03.q4, fp16_bytes_per_param=measured) == CORRECT
    assert status(lesson03.q4, fp16_bytes_per_param=2) == CORRECT                    # the itemsize
    assert status(lesson03.q4, fp16_bytes_per_param=torch.float16.itemsize) == CORRECT


def test_q4_wrong_answers(fp32, bf16):
    for value in (4.0, 16, 0.5, fp32.get_memory_footprint() / fp32.num_parameters(),
                  bf16.get_memory_footprint(), "2", None, True):
        assert status(lesson03.q4, fp16_bytes_per_param=value) == INCORRECT, value


def test_q4_missing():
    assert status(lesson03.q4) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q5

def test_q5_right_answers(course_model_path):
    eager = AutoModelForCausalLM.from_pretrained(course_model_path, attn_implementation="eager")
    assert status(lesson03.q5, eager_model=eager) == CORRECT
    eager16 = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.bfloat16,
                                                   attn_implementation="eager")
    assert status(lesson03.q5, eager_model=eager16) == CORRECT
    switched = AutoModelForCausalLM.from_pretrained(course_model_path)
    switched.set_attn_implementation("eager")                   # switched after loading
    assert status(lesson03.q5, eager_model=switched) == CORRECT


def test_q5_wrong_answers(fp32, tiny, course_model_path):
    assert status(lesson03.q5, eager_model=fp32) == INCORRECT            # default sdpa
    assert status(lesson03.q5, eager_model=tiny) == INCORRECT            # not the course model
    assert status(lesson03.q5, eager_model="eager") == INCORRECT         # a string, not a model
    assert status(lesson03.q5, eager_model=None) == INCORRECT


def test_q5_missing():
    assert status(lesson03.q5) == NOT_ATTEMPTED
    assert status(lesson03.q5, eager_model=____) == NOT_ATTEMPTED
