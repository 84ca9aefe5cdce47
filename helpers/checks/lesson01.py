"""Checks for exercises/01_loading.ipynb: loading a causal LM and looking inside it."""

from __future__ import annotations

import torch

from ..answers import ClassRef
from ..checking import Question, expect, numbered
from ..device import best_device
from .common import as_id_rows, as_integer, expect_course_model, reference_greedy, reference_model, reference_tokenizer

NOTEBOOK = "01_loading.ipynb"
PROMPT = "The capital of France is"
NEW_TOKENS = 12


def _check_q1(model_bf16):
    expect_course_model(model_bf16, "model_bf16")
    dtypes = set(model_bf16.dtypes)
    expect(dtypes == {torch.bfloat16},
           f"its weights are {sorted(map(str, dtypes))}, not bfloat16: pass `dtype=` to from_pretrained")
    expect(model_bf16.device.type == best_device(),
           f"it is on {model_bf16.device.type}, but the best device here is another one: "
           "use best_device() with device_map= (or .to())")


def _check_q2(dispatched_class, tiny_model_type):
    from transformers import AutoConfig, AutoModelForCausalLM

    from ..models import resolve_model
    config = AutoConfig.from_pretrained(resolve_model("tiny-random-gpt2"))
    expect(isinstance(tiny_model_type, str), "`tiny_model_type` should be a string read from the config")
    expect(tiny_model_type == config.model_type,
           "`tiny_model_type` is not the `model_type` field of the tiny model's config.json")
    expected = AutoModelForCausalLM._model_mapping[type(config)]
    expect(isinstance(dispatched_class, (str, ClassRef)),
           "`dispatched_class` should be a class (what type(model) returns) or its name")
    name = dispatched_class if isinstance(dispatched_class, str) else dispatched_class.name
    expect(name != "AutoModelForCausalLM",
           "AutoModelForCausalLM is the factory; which concrete class did it return? (type(model))")
    expect(name == expected.__name__,
           f"{name} is not the class AutoModelForCausalLM builds for the tiny model "
           "(a class without the LM head cannot generate)")
    if isinstance(dispatched_class, ClassRef):
        expect(dispatched_class.qualname == f"{expected.__module__}.{expected.__qualname__}",
               "that class has the right name but comes from elsewhere")


def _check_q3(n_params):
    n = as_integer(n_params, "n_params", "an integer (an exact count, not an estimate like 135e6)")
    ref = reference_model()
    exact = ref.num_parameters()
    double = sum(t.numel() for t in ref.state_dict().values())
    expect(not (n == double and double != exact),
           "you counted a shared (tied) weight twice: the LM head reuses the embedding "
           "matrix. Count model.parameters(), which lists each tensor once")
    expect(n == exact, "that is not the number of parameters of the course model")


def _check_q4(greedy_ids):
    rows = as_id_rows(greedy_ids, "greedy_ids")
    expect(len(rows) == 1, "one prompt, one output row: `greedy_ids` should hold a single sequence")
    want = list(reference_greedy(PROMPT, NEW_TOKENS))
    got, n_prompt = rows[0], len(reference_tokenizer()(PROMPT)["input_ids"])
    expect(got[:n_prompt] == want[:n_prompt],
           "the output should start with the prompt's ids (keep the whole output of generate(); "
           "use the prompt given in the question)")
    new = len(got) - n_prompt
    expect(new == NEW_TOKENS,
           f"you generated {new} new tokens, the question asks for {NEW_TOKENS}: use max_new_tokens "
           "(max_length counts the prompt too)")
    expect(got == want, "the new tokens differ from a greedy decode of the float32 `model`: "
                        "use do_sample=False (sampling picks random tokens)")


q1, q2, q3, q4 = QUESTIONS = numbered(
    Question("load the course model in bfloat16 on the best device", ["model_bf16"], _check_q1,
        hints=["from_pretrained takes `dtype=` (transformers 5; `torch_dtype=` is the old name).",
               "`best_device()` from helpers returns 'cuda', 'mps' or 'cpu'; pass it as device_map=.",
               "model_bf16 = AutoModelForCausalLM.from_pretrained(MODEL, dtype=..., device_map=...)"]),
    Question("find the class AutoModelForCausalLM dispatches to for the tiny GPT-2, and why",
        ["dispatched_class", "tiny_model_type"], _check_q2,
        hints=["Load the tiny model from `TINY` and look at type(...) of the result.",
               "The choice is made from one field of config.json: AutoConfig.from_pretrained(TINY) shows it.",
               "dispatched_class = type(AutoModelForCausalLM.from_pretrained(TINY)); "
               "tiny_model_type = AutoConfig.from_pretrained(TINY).model_type"]),
    Question("count the parameters of the course model exactly", ["n_params"], _check_q3,
        hints=["`model` (from the setup cell) has a method for this, or sum .numel() over its parameters.",
               "model.state_dict() lists the tied lm_head weight separately; model.parameters() does not.",
               "n_params = model.num_parameters()"]),
    Question(f"greedy-generate exactly {NEW_TOKENS} new tokens after {PROMPT!r}", ["greedy_ids"], _check_q4,
        hints=["Tokenize with return_tensors='pt', move the inputs to model.device (.to(model.device)), "
               "then model.generate(**inputs, ...).",
               "max_new_tokens counts only new tokens; do_sample=False is greedy.",
               f"greedy_ids = model.generate(**tokenizer({PROMPT!r}, return_tensors='pt').to(model.device), "
               f"max_new_tokens={NEW_TOKENS}, do_sample=False)"]),
    notebook=NOTEBOOK,
)
