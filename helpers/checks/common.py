"""The lessons' toolbox: reference objects and the answer converters every lesson's checks share.

* ``reference_model()`` / ``reference_tokenizer()`` - the course model (float32, CPU), loaded once
* ``reference_greedy(prompt, n)``   - the ids of its greedy decode of ``prompt`` (prompt + n new), cached
* ``vocab_size()``                  - how many token ids the course tokenizer has (``len(tokenizer)``)
* ``expect_course_model(value, name)`` - reject anything that is not the course model, with weights
* ``is_model(value)``               - is it a transformers model?

Converters: each returns the answer in one plain form, or raises :class:`helpers.checking.Incorrect`
(never anything else) for an answer of the wrong kind or out of range, so that a check using them
reports ``incorrect``, never ``check_failed``:

* ``as_number(value, name)``        - a finite float from an int/float/one-element real tensor
* ``as_integer(value, name)``       - an exact int from an int/one-element integer tensor
* ``as_real_tensor(value, name)``   - a CPU tensor of real numbers (not complex; integer, bool, finite on request)
* ``as_id_rows(value, name)``       - token ids as rows of ints, each within ``[0, vocab_size())``
* ``as_mask_rows(value, name)``     - an attention mask as rows of 0/1
* ``as_dtype(value)``               - a torch dtype from a dtype or its name, else None

Answers reach a check as :func:`helpers.answers.load` returns them: plain data whose records
(``ModelFacts``...) have fields of their declared types, but whose values may be anything a learner
typed (a huge int, a complex tensor, ``inf``...). Validate kind and range before use.
"""

from __future__ import annotations

import functools
import math
import numbers

import torch

from ..answers import ModelFacts
from ..checking import Incorrect, expect
from ..dtypes import parse_dtype as as_dtype  # noqa: F401  (the lessons' checks import it from here)


def load_course_model(dtype=torch.float32, name: str | None = None, **kwargs):
    """A fresh copy of the course model (or ``$COURSE_MODEL``, or the prepared model ``name``), in eval
    mode, on the CPU unless ``kwargs`` (``device_map``, ``quantization_config``...) say otherwise: the
    one place the checks call ``from_pretrained`` on a model."""
    from transformers import AutoModelForCausalLM

    from ..models import resolve_model
    return AutoModelForCausalLM.from_pretrained(resolve_model(name), dtype=dtype, **kwargs).eval()


@functools.lru_cache(maxsize=None)
def reference_model(name: str | None = None):
    """The course model (or ``$COURSE_MODEL``) in float32 on the CPU, loaded once, in eval mode."""
    return load_course_model(torch.float32, name)


@functools.lru_cache(maxsize=None)
def reference_tokenizer(name: str | None = None):
    """The course tokenizer, loaded once."""
    from transformers import AutoTokenizer

    from ..models import resolve_model
    return AutoTokenizer.from_pretrained(resolve_model(name))


def vocab_size() -> int:
    """How many token ids the course tokenizer knows: ids are ``0 .. vocab_size() - 1``."""
    return len(reference_tokenizer())


def _kind(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor"
    return type(value).__name__




def as_real_tensor(value, name: str, *, integer: bool = False, allow_bool: bool = False, finite: bool = False,
                   dims: tuple[int, ...] | None = None) -> torch.Tensor:
    """``value`` as a CPU tensor of real numbers, or ``Incorrect``.

    Refuses complex tensors always, bool tensors unless ``allow_bool``, floating-point ones when
    ``integer``, NaN/inf when ``finite``, and a number of dimensions not in ``dims``.
    """
    expect(isinstance(value, torch.Tensor), f"`{name}` should be a tensor, not {_kind(value)}")
    expect(not value.is_complex(), f"`{name}` is {_kind(value)}: complex numbers are not an answer here")
    expect(allow_bool or value.dtype != torch.bool, f"`{name}` is {_kind(value)}: it should hold numbers")
    expect(not integer or not value.is_floating_point(),
           f"`{name}` is {_kind(value)}: it should hold integers (like torch.long)")
    expect(dims is None or value.dim() in dims,
           f"`{name}` has {value.dim()} dimensions; it should have {' or '.join(map(str, dims or ()))}")
    value = value.detach().cpu()
    if finite and value.is_floating_point():
        expect(bool(torch.isfinite(value.float()).all()), f"`{name}` holds NaN or infinite values")
    return value


def as_id_rows(value, name: str | None = None) -> list[list[int]]:
    """Token ids as a list of rows of ints, each id within ``[0, vocab_size())``, or ``Incorrect``.

    Accepts a 1-D/2-D integer tensor, a list of ints, a list of lists of ints, or a list of rows
    given as tensors (1-D, or 2-D with one row: the outputs of separate generate() calls).
    """
    what = f"`{name}`" if name else "the answer"
    wanted = (f"{what} should be token ids: a tensor of integers or a list of ints (as the tokenizer or "
              "generate() returns them)")
    if isinstance(value, torch.Tensor):
        value = as_real_tensor(value, name or "the token ids", integer=True, dims=(1, 2)).tolist()
    expect(isinstance(value, (list, tuple)), f"{wanted}, not {_kind(value)}")
    expect(len(value) > 0, f"{what} is empty: it should hold token ids")
    if all(type(t) is int for t in value):
        rows = [list(value)]
    else:
        rows = []
        for row in value:
            if isinstance(row, torch.Tensor):
                row = as_real_tensor(row, name or "the token ids", integer=True, dims=(1, 2))
                expect(row.dim() == 1 or row.shape[0] == 1, f"{wanted}: a row given as a tensor should hold one row")
                row = row.reshape(-1).tolist()
            expect(isinstance(row, (list, tuple)) and all(type(t) is int for t in row),
                   f"{wanted}: each row should be a list of ints")
            rows.append(list(row))
    n = vocab_size()
    expect(all(0 <= t < n for row in rows for t in row),
           f"{what} holds ids outside the course tokenizer's vocabulary (0 to {n - 1}): use the ids that "
           "the course tokenizer and model produce")
    return rows


def as_mask_rows(value, name: str) -> list[list[int]]:
    """An attention mask as rows of 0/1 ints (from an int or bool tensor, or lists), or ``Incorrect``."""
    wanted = f"`{name}` should be an attention mask: rows of 0 and 1"
    if isinstance(value, torch.Tensor):
        value = as_real_tensor(value, name, integer=True, allow_bool=True, dims=(1, 2)).long().tolist()
    expect(isinstance(value, (list, tuple)), f"{wanted}, not {_kind(value)}")
    expect(len(value) > 0, f"`{name}` is empty: {wanted}")
    rows = [value] if all(type(t) in (int, bool) for t in value) else list(value)
    expect(all(isinstance(r, (list, tuple)) and all(type(t) in (int, bool) and t in (0, 1) for t in r) for r in rows),
           wanted)
    return [[int(t) for t in r] for r in rows]


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
    """A finite float from an int/float/NumPy scalar/one-element real tensor; ``Incorrect`` for anything else."""
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, f"`{name}` should be one number, not a tensor of {value.numel()} values")
        value = as_real_tensor(value, name).reshape(()).double().item()
    expect(isinstance(value, numbers.Real) and not isinstance(value, bool),
           f"`{name}` should be a number (a float), not {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        value = math.inf
    expect(math.isfinite(value), f"`{name}` should be a finite number")
    return value


def as_integer(value, name: str, what: str = "an integer") -> int:
    """An exact int from an int or a one-element integer tensor (not a bool, not a float); else ``Incorrect``.

    ``what`` ends the message: "`name` should be <what>".
    """
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1 and not value.is_floating_point() and not value.is_complex()
               and value.dtype != torch.bool,
               f"`{name}` should be {what}, not {_kind(value)} of {value.numel()} values")
        value = int(value.reshape(()).item())
    expect(isinstance(value, numbers.Integral) and not isinstance(value, bool),
           f"`{name}` should be {what}, not {type(value).__name__}")
    return int(value)
