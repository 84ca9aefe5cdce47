"""Reference objects and small converters shared by the lesson checks."""

from __future__ import annotations

import functools

import torch

from ..checking import Incorrect


@functools.lru_cache(maxsize=None)
def reference_model(name: str | None = None):
    """The course model (or ``$COURSE_MODEL``) in float32 on the CPU, loaded once, in eval mode."""
    from transformers import AutoModelForCausalLM

    from ..models import resolve_model
    return AutoModelForCausalLM.from_pretrained(resolve_model(name), dtype=torch.float32).eval()


@functools.lru_cache(maxsize=None)
def reference_tokenizer(name: str | None = None):
    """The course tokenizer, loaded once."""
    from transformers import AutoTokenizer

    from ..models import resolve_model
    return AutoTokenizer.from_pretrained(resolve_model(name))


def as_id_rows(value) -> list[list[int]]:
    """Token ids as a list of rows of ints: accepts a 1-D/2-D tensor or (nested) lists."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if not isinstance(value, (list, tuple)) or not value:
        raise Incorrect("expected token ids: a tensor or a list of ints")
    rows = [value] if isinstance(value[0], int) else list(value)
    if not all(isinstance(r, (list, tuple)) and all(isinstance(t, int) and t >= 0 for t in r) for r in rows):
        raise Incorrect("expected token ids: a tensor or a list of non-negative ints")
    return [list(r) for r in rows]


def is_model(value) -> bool:
    """True for a transformers model (``PreTrainedModel``)."""
    from transformers import PreTrainedModel
    return isinstance(value, PreTrainedModel)
