"""The chat template as the course uses it: a question is one user turn, and the assistant's header
is added after it, so that what the model writes next is its reply (lesson 02).

One home for the lessons' helpers (``finetune``, ``playground``) and the checks (lesson 02's
reference replies): ``turn``, ``inputs`` and ``reply``.
"""

from __future__ import annotations

import torch


def turn(question: str) -> list[dict]:
    """``question`` as a conversation of one user message."""
    return [{"role": "user", "content": question}]


def inputs(tokenizer, question: str, *, tokenize: bool = True):
    """``question`` in the chat template with the assistant header: tensors (``input_ids``,
    ``attention_mask``) for ``generate()``, or the prompt text with ``tokenize=False``."""
    if not tokenize:
        return tokenizer.apply_chat_template(turn(question), add_generation_prompt=True, tokenize=False)
    return tokenizer.apply_chat_template(turn(question), add_generation_prompt=True, return_tensors="pt")


def reply(model, tokenizer, question: str, max_new_tokens: int = 12) -> str:
    """The model's greedy reply to ``question``: the new tokens only, decoded without special tokens."""
    enc = inputs(tokenizer, question).to(model.device)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
