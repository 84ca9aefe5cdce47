"""Lesson 02 checks: right answers (written differently) pass, known-wrong answers are rejected."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers.checks import lesson02
from helpers.checks.lesson02 import (Q1_NEW, Q1_PROMPT, Q2_QUESTION, Q3_MAX_NEW, Q3_QUESTION, Q4_NEW, Q4_PROMPTS,
                                     Q5_NEW, Q5_PROMPT, Q5_SAMPLES, Q5_TOP_K, _beam_rows, q1, q2, q3, q4,
                                     q5)
from support import status


def evaluate(q, **answers):
    return q.evaluate(answers)



def chat(question):
    return [{"role": "user", "content": question}]


def test_q1(model, tiny, tok):
    inputs = tok(Q1_PROMPT, return_tensors="pt")
    n = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=Q1_NEW, do_sample=False)
    assert status(q1, new_ids=out[0, n:]) == "correct"
    assert status(q1, new_ids=out[:, n:].tolist()) == "correct"          # 2-D list of one row
    r = evaluate(q1, new_ids=out)                                        # prompt still included
    assert r.status == "incorrect" and "prompt" in r.message
    short = model.generate(**inputs, max_length=Q1_NEW, do_sample=False)  # the max_length trap
    r = evaluate(q1, new_ids=short[0, n:])
    assert r.status == "incorrect" and "max_new_tokens" in r.message
    torch.manual_seed(0)
    sampled = model.generate(**inputs, max_new_tokens=Q1_NEW, do_sample=True, temperature=1.5, top_k=0)
    assert status(q1, new_ids=sampled[0, n:]) == "incorrect"
    gibberish = tiny.generate(**inputs, max_new_tokens=Q1_NEW, do_sample=False)
    assert status(q1, new_ids=gibberish[0, n:]) == "incorrect"
    assert status(q1, new_ids=None) == "incorrect"
    assert status(q1, new_ids=tok.decode(out[0, n:])) == "incorrect"    # text, not ids
    assert status(q1) == "not_attempted"


def test_q2(tok):
    text = tok.apply_chat_template(chat(Q2_QUESTION), tokenize=False, add_generation_prompt=True)
    enc = tok.apply_chat_template(chat(Q2_QUESTION), add_generation_prompt=True, return_tensors="pt")
    ids = tok.apply_chat_template(chat(Q2_QUESTION), add_generation_prompt=True, return_dict=False)
    for right in (text, enc, enc["input_ids"], ids, dict(enc)):
        assert status(q2, chat_prompt=right) == "correct", type(right)
    r = evaluate(q2, chat_prompt=tok.apply_chat_template(chat(Q2_QUESTION), tokenize=False))
    assert r.status == "incorrect" and "add_generation_prompt" in r.message
    r = evaluate(q2, chat_prompt=tok(Q2_QUESTION, return_tensors="pt"))  # raw text, no template
    assert r.status == "incorrect" and "apply_chat_template" in r.message
    own_system = [{"role": "system", "content": "Be brief."}] + chat(Q2_QUESTION)
    assert status(q2, chat_prompt=tok.apply_chat_template(own_system, tokenize=False,
                                                          add_generation_prompt=True)) == "incorrect"
    other = tok.apply_chat_template(chat("Give me one tip."), tokenize=False, add_generation_prompt=True)
    assert status(q2, chat_prompt=other) == "incorrect"
    assert status(q2, chat_prompt=None) == "incorrect"
    assert status(q2) == "not_attempted"


def test_q3(model, tiny, tok):
    enc = tok.apply_chat_template(chat(Q3_QUESTION), add_generation_prompt=True, return_tensors="pt")
    n = enc["input_ids"].shape[1]
    out = model.generate(**enc, max_new_tokens=Q3_MAX_NEW, do_sample=False)
    right = tok.decode(out[0, n:], skip_special_tokens=True)
    assert status(q3, reply=right) == "correct"
    assert status(q3, reply=tok.batch_decode(out[:, n:], skip_special_tokens=True)[0] + "\n") == "correct"
    r = evaluate(q3, reply=tok.decode(out[0, n:]))                      # keeps <|im_end|>
    assert r.status == "incorrect" and "skip_special_tokens" in r.message
    r = evaluate(q3, reply=tok.decode(out[0], skip_special_tokens=True))  # the prompt too
    assert r.status == "incorrect" and "only the new" in r.message
    raw = tok(Q3_QUESTION, return_tensors="pt")                          # no chat template
    raw_out = model.generate(**raw, max_new_tokens=Q3_MAX_NEW, do_sample=False)
    assert status(q3, reply=tok.decode(raw_out[0, raw["input_ids"].shape[1]:], skip_special_tokens=True)) \
        == "incorrect"
    gibberish = tiny.generate(**enc, max_new_tokens=10, do_sample=False)
    assert status(q3, reply=tok.decode(gibberish[0, n:], skip_special_tokens=True)) == "incorrect"
    assert status(q3, reply=out[0, n:]) == "incorrect"                   # ids, not text
    assert status(q3) == "not_attempted"


def test_q4(course_model_path, model, tok):
    left = AutoTokenizer.from_pretrained(course_model_path, padding_side="left")
    batch = left(list(Q4_PROMPTS), return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=Q4_NEW, do_sample=False)
    assert status(q4, batch_inputs=batch, batch_output=out) == "correct"
    as_lists = left(list(Q4_PROMPTS), padding=True)                      # a dict of lists, output as lists
    assert status(q4, batch_inputs=as_lists, batch_output=out.tolist()) == "correct"

    right_tok = AutoTokenizer.from_pretrained(course_model_path)         # padding_side="right"
    rbatch = right_tok(list(Q4_PROMPTS), return_tensors="pt", padding=True)
    rout = model.generate(**rbatch, max_new_tokens=Q4_NEW, do_sample=False)
    r = evaluate(q4, batch_inputs=rbatch, batch_output=rout)
    assert r.status == "incorrect" and "left" in r.message
    no_mask = model.generate(batch["input_ids"], max_new_tokens=Q4_NEW, do_sample=False)
    r = evaluate(q4, batch_inputs=batch, batch_output=no_mask)           # attention mask not passed
    assert r.status == "incorrect" and "attention mask" in r.message
    r = evaluate(q4, batch_inputs={"input_ids": batch["input_ids"]}, batch_output=out)
    assert r.status == "incorrect" and "attention_mask" in r.message
    too_short = model.generate(**batch, max_new_tokens=Q4_NEW // 2, do_sample=False)
    r = evaluate(q4, batch_inputs=batch, batch_output=too_short)
    assert r.status == "incorrect" and "max_new_tokens" in r.message
    swapped = left(list(reversed(Q4_PROMPTS)), return_tensors="pt", padding=True)
    assert status(q4, batch_inputs=swapped, batch_output=out) == "incorrect"
    assert status(q4, batch_inputs=None, batch_output=out) == "incorrect"
    assert status(q4, batch_inputs=batch) == "not_attempted"


def test_q5(model, tiny, tok):
    inputs = tok(Q5_PROMPT, return_tensors="pt")
    torch.manual_seed(0)
    right = model.generate(**inputs, do_sample=True, top_k=Q5_TOP_K, max_new_tokens=Q5_NEW,
                           num_return_sequences=Q5_SAMPLES)
    assert status(q5, sampled_ids=right) == "correct"
    assert status(q5, sampled_ids=right.tolist()) == "correct"             # a list of lists
    forged_end = [r[:-2] + [tok.eos_token_id] * 2 for r in right.tolist()]  # an EOS the model would not draw
    r = evaluate(q5, sampled_ids=forged_end)
    assert r.status == "incorrect" and "top_k" in r.message

    greedy = model.generate(**inputs, max_new_tokens=Q5_NEW, do_sample=False)
    r = evaluate(q5, sampled_ids=greedy.repeat(Q5_SAMPLES, 1))
    assert r.status == "incorrect" and "identical" in r.message
    torch.manual_seed(0)
    wild = model.generate(**inputs, do_sample=True, top_k=0, temperature=1.5, max_new_tokens=Q5_NEW,
                          num_return_sequences=Q5_SAMPLES)
    r = evaluate(q5, sampled_ids=wild)
    assert r.status == "incorrect" and "top_k" in r.message
    torch.manual_seed(0)
    gibberish = tiny.generate(**inputs, do_sample=True, top_k=Q5_TOP_K, max_new_tokens=Q5_NEW,
                              num_return_sequences=Q5_SAMPLES)
    assert status(q5, sampled_ids=gibberish) == "incorrect"
    beams = _beam_rows(Q5_PROMPT, Q5_NEW, Q5_SAMPLES)  # = model.generate(num_beams=3, num_return_sequences=3)
    r = evaluate(q5, sampled_ids=[list(b) for b in beams])
    assert r.status == "incorrect" and "beam" in r.message
    r = evaluate(q5, sampled_ids=right[:, inputs["input_ids"].shape[1]:])  # new ids only
    assert r.status == "incorrect" and "prompt" in r.message
    assert status(q5, sampled_ids=right[:2]) == "incorrect"
    assert status(q5) == "not_attempted"


def test_q5_three_separate_generate_calls_pass(model, tok):
    inputs = tok(Q5_PROMPT, return_tensors="pt")
    torch.manual_seed(0)
    calls = [model.generate(**inputs, do_sample=True, top_k=Q5_TOP_K, max_new_tokens=Q5_NEW) for _ in range(Q5_SAMPLES)]
    assert status(q5, sampled_ids=torch.cat(calls)) == "correct"
    assert status(q5, sampled_ids=[c[0].tolist() for c in calls]) == "correct"  # a list of rows
    assert status(q5, sampled_ids=calls) == "correct"                           # a list of (1, n) outputs


def test_q5_rows_that_end_right_after_the_prompt_are_not_samples(model, tok):
    """The old loophole: rows that differ only in how many EOS follow the prompt passed as 3 samples."""
    prompt, eos = tok(Q5_PROMPT)["input_ids"], tok.eos_token_id
    empty = [prompt + [eos], prompt + [eos] * 2, prompt + [eos] * Q5_NEW]
    r = evaluate(q5, sampled_ids=empty)
    assert r.status == "incorrect" and "at least one new token" in r.message
    torch.manual_seed(0)
    honest = model.generate(**tok(Q5_PROMPT, return_tensors="pt"), do_sample=True, top_k=Q5_TOP_K,
                            max_new_tokens=Q5_NEW)[0].tolist()
    r = evaluate(q5, sampled_ids=[honest, prompt + [eos], prompt + [eos] * 2])  # one sample, two empty rows
    assert r.status == "incorrect" and "at least one new token" in r.message
    r = evaluate(q5, sampled_ids=[honest, honest[:-1] + [eos], honest])  # "different" only by the padding
    assert r.status == "incorrect" and "top_k" in r.message
    with torch.no_grad():
        top = torch.topk(model(torch.tensor([prompt])).logits[0, -1], Q5_SAMPLES).indices.tolist()
    r = evaluate(q5, sampled_ids=[prompt + [t, eos] for t in top])  # three likely first tokens, then stop
    assert r.status == "incorrect" and "top_k" in r.message
    r = evaluate(q5, sampled_ids=[prompt + [top[0]] * Q5_NEW] * 2 + [prompt + [top[0]] * 11 + [eos]])
    assert r.status == "incorrect"


def test_q5_samples_that_end_early_pass(model, tok, monkeypatch):
    """A prompt after which the model often stops: honest samples that end with EOS early are right."""
    prompt = tok.apply_chat_template(chat("Name a colour. One word only."), tokenize=False, add_generation_prompt=True)
    monkeypatch.setattr(lesson02, "Q5_PROMPT", prompt)
    torch.manual_seed(0)
    out = model.generate(**tok(prompt, return_tensors="pt"), do_sample=True, top_k=Q5_TOP_K, max_new_tokens=Q5_NEW,
                         num_return_sequences=Q5_SAMPLES)
    assert (out == tok.eos_token_id).any(dim=1).sum() >= 1, "the test needs a sample that ended early"
    assert status(q5, sampled_ids=out) == "correct"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_answers_from_a_model_on_the_gpu(course_model_path, tok):
    """The references run on the CPU; float32 answers computed on a GPU must pass all the same."""
    gpu = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32, device_map="cuda")
    inputs = tok(Q1_PROMPT, return_tensors="pt").to(gpu.device)
    out = gpu.generate(**inputs, max_new_tokens=Q1_NEW, do_sample=False)
    assert status(q1, new_ids=out[0, inputs["input_ids"].shape[1]:]) == "correct"
    chat_in = tok.apply_chat_template(chat(Q3_QUESTION), add_generation_prompt=True, return_tensors="pt").to(gpu.device)
    out = gpu.generate(**chat_in, max_new_tokens=Q3_MAX_NEW, do_sample=False)
    reply = tok.decode(out[0, chat_in["input_ids"].shape[1]:], skip_special_tokens=True)
    assert status(q3, reply=reply) == "correct"
    left = AutoTokenizer.from_pretrained(course_model_path, padding_side="left")
    batch = left(list(Q4_PROMPTS), return_tensors="pt", padding=True).to(gpu.device)
    out = gpu.generate(**batch, max_new_tokens=Q4_NEW, do_sample=False)
    assert status(q4, batch_inputs=batch, batch_output=out) == "correct"
    torch.manual_seed(0)
    sampled = gpu.generate(**tok(Q5_PROMPT, return_tensors="pt").to(gpu.device), do_sample=True, top_k=Q5_TOP_K,
                           max_new_tokens=Q5_NEW, num_return_sequences=Q5_SAMPLES)
    assert status(q5, sampled_ids=sampled) == "correct"


def test_answers_from_other_float32_kernels_pass(course_model_path, tok):
    """The GPU test above, simulated where no GPU is present.

    A GPU computes the same float32 model with other kernels, which round differently. Eager attention
    instead of sdpa does the same on the CPU (its logits differ from the references' by about 5e-5, the
    size of a CPU/GPU float32 difference): every question's answer, written as the lesson writes it,
    must still pass.
    """
    other = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32, attn_implementation="eager")
    inputs = tok(Q1_PROMPT, return_tensors="pt")
    out = other.generate(**inputs, max_new_tokens=Q1_NEW, do_sample=False)
    assert status(q1, new_ids=out[0, inputs["input_ids"].shape[1]:]) == "correct"
    chat_in = tok.apply_chat_template(chat(Q3_QUESTION), add_generation_prompt=True, return_tensors="pt")
    out = other.generate(**chat_in, max_new_tokens=Q3_MAX_NEW, do_sample=False)
    assert status(q3, reply=tok.decode(out[0, chat_in["input_ids"].shape[1]:], skip_special_tokens=True)) == "correct"
    left = AutoTokenizer.from_pretrained(course_model_path, padding_side="left")
    batch = left(list(Q4_PROMPTS), return_tensors="pt", padding=True)
    assert status(q4, batch_inputs=batch,
                  batch_output=other.generate(**batch, max_new_tokens=Q4_NEW, do_sample=False)) == "correct"
    q5_inputs = tok(Q5_PROMPT, return_tensors="pt")
    for seed in range(3):  # several draws: a token at the top-k boundary is judged with a tolerance
        torch.manual_seed(seed)
        sampled = other.generate(**q5_inputs, do_sample=True, top_k=Q5_TOP_K, max_new_tokens=Q5_NEW,
                                 num_return_sequences=Q5_SAMPLES)
        assert status(q5, sampled_ids=sampled) == "correct", seed
