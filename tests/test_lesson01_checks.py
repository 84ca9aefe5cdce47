"""Lesson 01 checks: right answers (written differently) pass, known-wrong answers are rejected."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Model

from helpers import best_device
from helpers.checks.lesson01 import NEW_TOKENS, PROMPT, q1, q2, q3, q4
from support import REFERENCE_FREE, status



def test_q1(course_model_path, tiny_model_path, model):
    ok_a = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.bfloat16, device_map=best_device())
    ok_b = AutoModelForCausalLM.from_pretrained(course_model_path, dtype="bfloat16").to(best_device())
    assert status(q1, model_bf16=ok_a) == status(q1, model_bf16=ok_b) == "correct"
    assert status(q1, model_bf16=model) == "incorrect"  # float32
    tiny = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.bfloat16)
    assert status(q1, model_bf16=tiny) == "incorrect"  # not the course model
    half = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float16)
    r = q1.evaluate({"model_bf16": half})
    assert r.status == "incorrect" and "float16" in r.message
    assert status(q1, model_bf16="bfloat16") == "incorrect"
    assert status(q1) == "not_attempted"


@REFERENCE_FREE
def test_q2(tiny_model_path):
    from transformers import GPT2LMHeadModel
    right_type = AutoConfig.from_pretrained(tiny_model_path).model_type
    assert status(q2, dispatched_class=GPT2LMHeadModel, tiny_model_type=right_type) == "correct"
    assert status(q2, dispatched_class="GPT2LMHeadModel", tiny_model_type="gpt2") == "correct"
    assert status(q2, dispatched_class=AutoModelForCausalLM, tiny_model_type="gpt2") == "incorrect"
    assert status(q2, dispatched_class=GPT2Model, tiny_model_type="gpt2") == "incorrect"
    assert status(q2, dispatched_class=GPT2LMHeadModel, tiny_model_type="llama") == "incorrect"
    assert status(q2, dispatched_class=GPT2LMHeadModel, tiny_model_type=None) == "incorrect"
    assert status(q2, dispatched_class=GPT2LMHeadModel) == "not_attempted"


def test_q3(model):
    assert status(q3, n_params=model.num_parameters()) == "correct"
    assert status(q3, n_params=sum(p.numel() for p in model.parameters())) == "correct"
    assert status(q3, n_params=torch.tensor(model.num_parameters())) == "correct"
    twice = sum(t.numel() for t in model.state_dict().values())
    r = q3.evaluate({"n_params": twice})
    assert r.status == "incorrect" and "twice" in r.message and str(model.num_parameters()) not in r.message
    assert status(q3, n_params=135e6) == "incorrect"
    assert status(q3, n_params=135_000_000) == "incorrect"
    assert status(q3, n_params=True) == "incorrect"


def test_q4(model, tok):
    inputs = tok(PROMPT, return_tensors="pt")
    right = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
    assert status(q4, greedy_ids=right) == "correct"
    assert status(q4, greedy_ids=right[0].tolist()) == "correct"  # a list of ints is fine too
    short = model.generate(**inputs, max_length=NEW_TOKENS, do_sample=False)
    r = q4.evaluate({"greedy_ids": short})
    assert r.status == "incorrect" and "max_new_tokens" in r.message
    torch.manual_seed(0)
    sampled = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=True, temperature=1.5)
    assert status(q4, greedy_ids=sampled) == "incorrect"
    new_only = right[:, inputs["input_ids"].shape[1]:]
    assert status(q4, greedy_ids=new_only) == "incorrect"
    assert status(q4, greedy_ids="The capital of France is Paris") == "incorrect"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_q4_accepts_a_greedy_decode_on_the_gpu(course_model_path, tok):
    on_gpu = AutoModelForCausalLM.from_pretrained(course_model_path, device_map="cuda")
    inputs = tok(PROMPT, return_tensors="pt").to(on_gpu.device)
    right = on_gpu.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
    assert right.device.type == "cuda" and status(q4, greedy_ids=right) == "correct"


def test_q1_q4_answers_from_a_simulated_gpu_pass(course_model_path, tok, monkeypatch):
    """The GPU tests above, simulated where no GPU is present.

    Q1: the record of a model loaded with device_map=best_device() on a CUDA machine says cuda:0, and there
    best_device() says "cuda" (both simulated: the model's ``device`` and the grader's best_device()).
    Q4: a GPU runs the float32 model with other kernels; eager attention instead of sdpa does the same here
    (logits about 5e-5 apart), and the greedy ids must still be accepted.
    """
    import helpers.checks.lesson01 as L01
    from transformers import LlamaForCausalLM

    monkeypatch.setattr(L01, "best_device", lambda: "cuda")
    monkeypatch.setattr(LlamaForCausalLM, "device", property(lambda self: torch.device("cuda", 0)))
    on_gpu = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.bfloat16)
    assert status(q1, model_bf16=on_gpu) == "correct"
    monkeypatch.setattr(LlamaForCausalLM, "device", property(lambda self: torch.device("cpu")))
    r = q1.evaluate({"model_bf16": on_gpu})  # left on the CPU of a GPU machine: the lesson's device_map missing
    assert r.status == "incorrect" and "best device" in r.message
    monkeypatch.undo()

    other = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32, attn_implementation="eager")
    inputs = tok(PROMPT, return_tensors="pt")
    assert status(q4, greedy_ids=other.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)) == "correct"
