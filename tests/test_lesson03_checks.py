"""The lesson 03 checks accept right answers (however written) and reject known-wrong ones."""

from unittest import mock

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers.checking import CORRECT, INCORRECT, NOT_ATTEMPTED, ____
from helpers.checks import lesson03
from helpers.checks.common import reference_model
from support import REFERENCE_FREE, forged, status


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

def _max_diff(course_model_path, fp32, model, linear=None):
    """max |model - fp32| over the logits of the question's prompt (with `linear` as F.linear, if given)."""
    tok = AutoTokenizer.from_pretrained(course_model_path)
    enc = tok(lesson03.PROMPT, return_tensors="pt")
    with torch.no_grad(), mock.patch.object(torch.nn.functional, "linear", linear or torch.nn.functional.linear):
        return (model(**enc).logits.float() - fp32(**enc).logits).abs().max().item()


_linear = torch.nn.functional.linear


def gpu_like_linear(x, w, b=None):
    """A float16 linear layer as GPU tensor cores compute it: float32 accumulation, one rounding at the end
    (the CPU kernels round differently). A simulation: no GPU needed."""
    if x.dtype != torch.float16:
        return _linear(x, w, b)
    return _linear(x.float(), w.float(), None if b is None else b.float()).half()


def on_device(device):
    """An edit for forged(): the saved `fp16_model` record says the model was on `device`."""
    def edit(record, folder):
        record["fp16_model"]["device"] = device
    return edit


def test_q2_right_answers(logit_diffs, fp16, fp32, course_model_path):
    d = logit_diffs["fp16"]
    assert status(lesson03.q2, fp16_model=fp16, max_logit_diff=d.max().item()) == CORRECT
    assert status(lesson03.q2, fp16_model=fp16, max_logit_diff=d.max()) == CORRECT                  # a 0-d tensor
    assert status(lesson03.q2, fp16_model=fp16, max_logit_diff=round(d.max().item(), 2)) == CORRECT  # rounded
    # the other ways lesson 03 makes a float16 copy: a float32 load cast with .to() (its rotary buffers are
    # rounded too, which moves the logits by more than 5 %), and the eager attention
    cast = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32).to(torch.float16)
    assert status(lesson03.q2, fp16_model=cast, max_logit_diff=_max_diff(course_model_path, fp32, cast)) == CORRECT
    eager = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float16, attn_implementation="eager")
    assert status(lesson03.q2, fp16_model=eager, max_logit_diff=_max_diff(course_model_path, fp32, eager)) == CORRECT


def test_q2_an_answer_from_a_gpu_is_judged_on_that_gpu(logit_diffs, fp16, fp32, course_model_path, monkeypatch):
    """A learner who loads the float16 copy with device_map="cuda" gets a GPU's rounding, not the CPU's.

    Simulated here: the answer's value comes from GPU-like float16 linear layers, its record says cuda:0,
    and "the grader has that GPU" is the check computing its reference with the same kernels.
    """
    cpu_value = logit_diffs["fp16"].max().item()
    gpu_value = _max_diff(course_model_path, fp32, fp16, gpu_like_linear)
    assert abs(gpu_value - cpu_value) > lesson03.DIFF_REL_TOL * cpu_value  # a CPU reference at 5 % rejected it
    answer = {"fp16_model": fp16, "max_logit_diff": gpu_value}
    monkeypatch.setattr(lesson03, "_compute_device", lambda device: ("cpu", True))  # "this machine has cuda:0"
    lesson03._load_stats.cache_clear()
    try:
        with mock.patch.object(torch.nn.functional, "linear", gpu_like_linear):
            assert forged(lesson03.q2, answer, on_device("cuda:0")).status == CORRECT
            # still judged: a value far from that GPU's (the bfloat16 one) is rejected
            bf16_answer = dict(answer, max_logit_diff=logit_diffs["bf16"].max().item())
            assert forged(lesson03.q2, bf16_answer, on_device("cuda:0")).status == INCORRECT
    finally:
        lesson03._load_stats.cache_clear()


def test_q2_an_answer_from_a_device_this_machine_lacks(logit_diffs, fp16, fp32, course_model_path):
    """Regraded where that GPU is not (or a record naming a device that does not exist): CPU reference,
    OTHER_DEVICE_REL_TOL."""
    gpu_value = _max_diff(course_model_path, fp32, fp16, gpu_like_linear)
    device = f"cuda:{torch.cuda.device_count()}"  # a GPU index this machine does not have
    assert lesson03._compute_device(torch.device(device)) == ("cpu", False)
    assert lesson03._compute_device(torch.device("meta")) == ("cpu", False)
    assert lesson03._compute_device(torch.device("cpu")) == ("cpu", True)
    answer = {"fp16_model": fp16, "max_logit_diff": gpu_value}
    assert forged(lesson03.q2, answer, on_device(device)).status == CORRECT
    d = logit_diffs["fp16"]
    for wrong in (d.mean().item(), logit_diffs["bf16"].max().item(), 0.0):
        result = forged(lesson03.q2, dict(answer, max_logit_diff=wrong), on_device(device))
        assert result.status == INCORRECT, wrong
    assert "does not have" in result.message or "compared a model with itself" in result.message


def test_q2_wrong_answers(logit_diffs, fp16, fp32, bf16):
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
        assert status(lesson03.q2, fp16_model=fp16, max_logit_diff=value) == INCORRECT, label
    last = d[0, -1].max().item()
    if abs(last - d.max().item()) > 0.05 * d.max().item():   # only meaningful where they differ
        assert status(lesson03.q2, fp16_model=fp16, max_logit_diff=last) == INCORRECT
    # the model must be the float16 copy the value came from
    result = lesson03.q2.evaluate({"fp16_model": bf16, "max_logit_diff": d.max().item()})
    assert result.status == INCORRECT and "float16" in result.message
    assert status(lesson03.q2, fp16_model=fp32, max_logit_diff=d.max().item()) == INCORRECT
    assert status(lesson03.q2, fp16_model="fp16", max_logit_diff=d.max().item()) == INCORRECT


def test_q2_missing(fp16):
    assert status(lesson03.q2) == NOT_ATTEMPTED
    assert status(lesson03.q2, fp16_model=fp16) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q3

@REFERENCE_FREE
def test_q3_right_answers(course_model_path):
    want = AutoModelForCausalLM.from_pretrained(course_model_path, dtype="auto").dtype
    name = str(want).removeprefix("torch.")
    for value in (want, name, f"torch.{name}"):
        assert status(lesson03.q3, auto_dtype=value) == CORRECT, value


@REFERENCE_FREE
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
