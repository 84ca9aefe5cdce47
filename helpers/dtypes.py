"""torch dtypes by name: one parser for every place a dtype arrives as text.

A dtype reaches the course as text in several places: an answer saved by the grader, a config's
``bnb_4bit_compute_dtype``, a measurement's arguments sent to a child process, a learner's answer
written as ``"bfloat16"``. Names are looked up only among torch's dtypes (:data:`DTYPES`), never
with ``getattr(torch, name)``, which would import parts of torch for a name like ``"_dynamo"``.
"""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {name: v for name, v in vars(torch).items() if isinstance(v, torch.dtype)}


def parse_dtype(value) -> torch.dtype | None:
    """``torch.bfloat16`` for ``torch.bfloat16``, ``"bfloat16"`` or ``"torch.bfloat16"``; else None."""
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str):
        return DTYPES.get(value.removeprefix("torch."))
    return None
