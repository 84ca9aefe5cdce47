"""The lessons' toolbox: reference objects and the answer converters every lesson's checks share.

* ``reference_model()`` / ``reference_tokenizer()`` - the course model (float32, CPU), loaded once
* ``reference_greedy(prompt, n)``   - the ids of its greedy decode of ``prompt`` (prompt + n new), cached
* ``expect_course_model(value, name)`` - reject anything that is not the course model, with weights
* ``as_number(value, name)``        - a float from an int/float/one-element tensor, or ``Incorrect``
* ``as_id_rows(value)``             - token ids as rows of ints, or ``Incorrect``
* ``is_model(value)``               - is it a transformers model?

Each converter raises :class:`helpers.checking.Incorrect` (never anything else) for an answer of
the wrong kind, so a check that uses them reports ``incorrect``, not ``check_failed``.
"""

from __future__ import annotations

import functools
import math
import numbers

import torch

from ..answers import ModelFacts
from ..checking import Incorrect, expect


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
    """True for an answer that was a transformers model (saved as :class:`helpers.answers.ModelFacts`)."""
    return isinstance(value, ModelFacts)


@functools.lru_cache(maxsize=None)
def reference_greedy(prompt: str, max_new_tokens: int) -> tuple[int, ...]:
    """The ids (prompt, then ``max_new_tokens`` new ones) of a greedy decode of ``prompt`` by the reference model."""
    enc = reference_tokenizer()(prompt, return_tensors="pt")
    with torch.no_grad():
        out = reference_model().generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tuple(out[0].tolist())


def expect_course_model(value, name: str, weights: bool = True) -> None:
    """Reject ``value`` unless it is the course model (same architecture and size).

    ``weights=True`` also rejects a model whose parameters are on the meta device (built under
    ``init_empty_weights()``) or whose weights are not the checkpoint's (random ones from
    ``from_config``: the first rows of its input embedding are compared); pass False for a model
    that offloads part of itself on purpose.
    """
    expect(is_model(value), f"`{name}` should be a model returned by AutoModelForCausalLM.from_pretrained(...)")
    ref = reference_model()
    expect(value.model_type == ref.config.model_type and value.num_parameters == ref.num_parameters(),
           f"`{name}` is not the course model: load the folder in `MODEL`")
    expect(not weights or not value.on_meta,
           f"`{name}` has no weights (it is on the meta device): load it with from_pretrained, outside "
           "init_empty_weights()")
    if weights:
        got = value.embedding_rows
        want = ref.get_input_embeddings().weight[: len(got) if got is not None else 0]
        expect(got is not None and got.shape == want.shape and torch.allclose(got, want, atol=1e-2, rtol=1e-2),
               f"`{name}` has the course model's shape but not its trained weights: load the checkpoint "
               "with from_pretrained (from_config builds random weights)")


def as_number(value, name: str) -> float:
    """A finite float from an int/float/NumPy scalar/one-element tensor; ``Incorrect`` for anything else."""
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, f"`{name}` should be one number, not a tensor of {value.numel()} values")
        value = value.item()
    expect(isinstance(value, numbers.Real) and not isinstance(value, bool),
           f"`{name}` should be a number (a float), not {type(value).__name__}")
    value = float(value)
    expect(math.isfinite(value), f"`{name}` should be a finite number")
    return value
