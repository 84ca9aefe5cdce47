"""The lesson 02 playground without a browser: its plain functions and its button handler."""

import logging

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers.playground import STRATEGIES, Playground, generation_kwargs, make_playground, stream_generate


@pytest.fixture(scope="module")
def course(course_model_path):
    return (AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32),
            AutoTokenizer.from_pretrained(course_model_path))


def reference_reply(model, tok, prompt, **kwargs):
    enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt")
    out = model.generate(**enc, **kwargs)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


# --------------------------------------------------------------------------- generation_kwargs

def test_generation_kwargs_only_pass_the_flags_a_strategy_uses():
    assert generation_kwargs("greedy", temperature=0.3, top_k=5, top_p=0.5, max_new_tokens=7) == \
        {"max_new_tokens": 7, "do_sample": False}
    assert generation_kwargs("sampling", temperature=0.7, top_k=0, top_p=0.9, max_new_tokens=3) == \
        {"max_new_tokens": 3, "do_sample": True, "temperature": 0.7, "top_k": 0, "top_p": 0.9}
    assert generation_kwargs("beam search", temperature=0.7, max_new_tokens=4) == \
        {"max_new_tokens": 4, "do_sample": False, "num_beams": 3}
    assert set(STRATEGIES) == {"greedy", "sampling", "beam search"}


@pytest.mark.parametrize("bad, words", [
    (dict(strategy="nucleus"), "unknown strategy"),
    (dict(strategy="sampling", temperature=0.0), "temperature"),
    (dict(strategy="sampling", top_p=0.0), "top_p"),
    (dict(strategy="sampling", top_p=1.5), "top_p"),
    (dict(strategy="sampling", top_k=-1), "top_k"),
    (dict(strategy="greedy", max_new_tokens=0), "max_new_tokens"),
    (dict(strategy="beam search", num_beams=1), "num_beams"),
])
def test_generation_kwargs_rejects_bad_settings(bad, words):
    with pytest.raises(ValueError, match=words):
        generation_kwargs(**bad)


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_generation_kwargs_cause_no_ignored_flag_warning(tiny_pair):
    model, tok = tiny_pair
    enc = tok("Hi", return_tensors="pt")
    logging.Logger.warning_once.cache_clear()              # transformers logs each message once per process
    handler, logger = _Messages(), logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        model.generate(**enc, **generation_kwargs("greedy", temperature=0.3, top_k=5, top_p=0.5, max_new_tokens=2))
        assert not any("may be ignored" in m for m in handler.messages)
        model.generate(**enc, max_new_tokens=2, do_sample=False, temperature=0.3)  # the mistake it avoids
        assert any("may be ignored" in m for m in handler.messages)
    finally:
        logger.removeHandler(handler)


# --------------------------------------------------------------------------- stream_generate

def test_stream_greedy_matches_generate_on_the_course_model(course):
    model, tok = course
    prompt = "What is the capital of France?"
    chunks = list(stream_generate(model, tok, prompt, **generation_kwargs("greedy", max_new_tokens=20)))
    assert len(chunks) > 1 and all(chunks)                 # several non-empty pieces, not one block
    assert "".join(chunks) == reference_reply(model, tok, prompt, max_new_tokens=20, do_sample=False)
    assert "<|im_end|>" not in "".join(chunks)


def test_stream_plain_text_without_chat_template(tiny_pair):
    model, tok = tiny_pair
    text = "".join(stream_generate(model, tok, "Hello", chat=False, max_new_tokens=5, do_sample=False))
    enc = tok("Hello", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert text == tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_stream_sampling_is_reproducible_with_a_seed(tiny_pair):
    model, tok = tiny_pair
    kwargs = generation_kwargs("sampling", temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8)
    a = "".join(stream_generate(model, tok, "Hello", seed=3, **kwargs))
    b = "".join(stream_generate(model, tok, "Hello", seed=3, **kwargs))
    c = "".join(stream_generate(model, tok, "Hello", seed=4, **kwargs))
    assert a == b and a != c


def test_stream_beam_search_yields_one_chunk(tiny_pair):
    model, tok = tiny_pair
    chunks = list(stream_generate(model, tok, "Hello", **generation_kwargs("beam search", max_new_tokens=4)))
    assert len(chunks) == 1
    assert chunks[0] == reference_reply(model, tok, "Hello", max_new_tokens=4, num_beams=3, do_sample=False)


def test_stream_raises_generate_errors_in_the_caller(tiny_pair):
    model, tok = tiny_pair
    with pytest.raises(ValueError, match="max_tokens"):
        list(stream_generate(model, tok, "Hello", max_new_tokens=3, max_tokens=3, timeout=60))


# --------------------------------------------------------------------------- the widget

def test_playground_button_streams_into_the_output(course):
    model, tok = course
    pg = make_playground(model, tok)
    assert isinstance(pg, Playground)
    pg.prompt.value = "What is the capital of France?"
    pg.strategy.value = "greedy"
    pg.max_new_tokens.value = 20
    assert pg.temperature.disabled and pg.top_k.disabled and pg.top_p.disabled
    seen = []
    pg.output.observe(lambda change: seen.append(change["new"]), names="value")
    pg.button.click()                                      # what a click in the browser does
    want = reference_reply(model, tok, "What is the capital of France?", max_new_tokens=20, do_sample=False)
    assert pg.output.value == want
    grown = [v for v in seen if v]
    assert len(grown) > 1 and all(want.startswith(v) for v in grown)   # it grew piece by piece
    assert pg.status.value.startswith("done") and not pg.button.disabled


def test_playground_sampling_on_the_tiny_model(tiny_pair):
    model, tok = tiny_pair
    pg = make_playground(model, tok, prompt="Hello")
    pg.strategy.value = "sampling"
    assert not pg.temperature.disabled
    pg.max_new_tokens.value = 6
    pg.seed.value = 7
    first = pg.generate()
    assert first and pg.output.value == first
    assert pg.generate() == first                          # same seed, same text
    pg.chat.value = False
    assert pg.kwargs()["do_sample"] is True


def test_playground_shows_errors_in_status(tiny_pair):
    model, tok = tiny_pair
    pg = make_playground(model, tok)
    pg.strategy.value = "sampling"
    pg.top_p.value = 0.05
    pg.max_new_tokens.value = 2
    assert pg.generate() != "" and pg.status.value.startswith("done")
    pg.kwargs = lambda: generation_kwargs("sampling", temperature=0.0)   # a bad setting
    assert pg.generate() == ""
    assert pg.status.value.startswith("ValueError") and not pg.button.disabled
