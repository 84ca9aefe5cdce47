"""The tiny instruction dataset of lesson 06, ready for a training loop.

Lesson 06 (section 9) builds these step by step; the exercises and the tests
import them from here so that they train on exactly the same data:

* ``load_pairs()``            - the 32 question/answer pairs shipped in ``helpers/data``
* ``encode(pair, tokenizer)`` - one chat-formatted training sequence, loss on the answer only
* ``collate(batch, pad_id)``  - pad a list of encoded examples into tensors
"""

from __future__ import annotations

import json
from importlib.resources import files

import torch

DATA = files("helpers") / "data" / "lesson06_facts.jsonl"


def load_pairs() -> list[dict]:
    """The question/answer pairs: 22 teach a made-up fact (the capital of Zanthoria), 10 are real capitals."""
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def encode(pair: dict, tokenizer) -> dict:
    """Token ids of prompt (with the chat template) + answer + end-of-turn; labels are -100 over the prompt."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": pair["prompt"]}],
                                           add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(pair["response"] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return {"input_ids": prompt_ids + answer_ids, "labels": [-100] * len(prompt_ids) + answer_ids}


def collate(batch: list[dict], pad_id: int) -> dict:
    """Pad encoded examples on the right into ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    width = max(len(e["input_ids"]) for e in batch)
    ids = torch.full((len(batch), width), pad_id)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
