"""The tiny instruction dataset of lesson 06, and the lesson's training loop, ready to reuse.

Lesson 06 builds these step by step; its optional notebook (06b), the exercises and the
tests import them from here so that they all train on exactly the same data, the same way:

* ``load_pairs()``                  - the 32 question/answer pairs shipped in ``helpers/data``
* ``encode(pair, tokenizer)``       - one chat-formatted training sequence, loss on the answer only
* ``collate(batch, pad_id)``        - pad a list of encoded examples into tensors
* ``epoch_batches(n, size, seed)``  - one shuffled pass over the examples, as lists of indices
* ``train_adapter(model, ...)``     - the lesson's plain PyTorch loop (AdamW, one epoch by default)
* ``ask(model, tokenizer, question)`` - a greedy chat answer
* ``shared_words(question, prompts)`` - the words a question shares with the closest training prompt
"""

from __future__ import annotations

import json
import re
from importlib.resources import files

import torch

from . import chat

DATA = files("helpers") / "data" / "lesson06_facts.jsonl"
STEPS, BATCH, LR = 8, 4, 2e-3  # the lesson's run: 8 x 4 = one pass over the 32 pairs


def load_pairs() -> list[dict]:
    """The question/answer pairs: 22 teach a made-up fact (the capital of Zanthoria), 10 are real capitals."""
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def encode(pair: dict, tokenizer) -> dict:
    """Token ids of prompt (with the chat template) + answer + end-of-turn; labels are -100 over the prompt."""
    prompt = chat.inputs(tokenizer, pair["prompt"], tokenize=False)
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


def epoch_batches(n: int, size: int = BATCH, seed: int = 0) -> list[list[int]]:
    """Indices 0..n-1 shuffled with a seeded generator, cut into batches of ``size``: one epoch."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return [order[i:i + size] for i in range(0, n, size)]


def train_adapter(model, examples: list[dict], pad_id: int, steps: int = STEPS, batch_size: int = BATCH,
                  lr: float = LR, seed: int = 0) -> list[float]:
    """Lesson 06's loop: AdamW on the trainable (LoRA) parameters, ``steps`` batches; returns the losses.

    Batches come from :func:`epoch_batches` (a new shuffle after each epoch). Leaves the model in
    eval mode. Do not generate with a 4-bit model before this on an avx512_bf16 CPU (lesson 06b).
    """
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    batches = []
    while len(batches) < steps:
        batches += epoch_batches(len(examples), batch_size, seed + len(batches))
    model.train()
    losses = []
    for idx in batches[:steps]:
        batch = {k: v.to(model.device) for k, v in collate([examples[i] for i in idx], pad_id).items()}
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


ask = chat.reply  # the model's greedy answer to one chat question (the chat template of lesson 02)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def shared_words(question: str, prompts: list[str]) -> tuple[str, list[str]]:
    """The training prompt that shares the most words with ``question``, and those words (sorted)."""
    best = max(prompts, key=lambda p: len(_words(question) & _words(p)))
    return best, sorted(_words(question) & _words(best))
