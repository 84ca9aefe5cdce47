"""Answers as plain data: what a check sees of a learner's variables.

A check never looks at the learner's live objects. :func:`save` turns each answer into plain data
in a folder, :func:`load` reads it back, and the check runs on what :func:`load` returns. In a
notebook ``q1.check()`` does both in the same process (instant feedback); the grader runs
:func:`save` in the learner's kernel and :func:`load` plus the checks in a separate, clean process,
so that code in the notebook can change the data but never the verdict (docs/grading.md).

What an answer becomes (the folder holds ``q1.answer``, a Python literal read with
:func:`ast.literal_eval`, ``q1.safetensors`` for tensors, and ``q1/`` for saved folders; no pickle):

* numbers, strings, ``None``, lists, tuples, sets, dicts -> the same values;
* ``torch.Tensor`` -> the same tensor, on the CPU (through safetensors);
* ``torch.dtype``, ``torch.device`` -> the same dtype, device;
* a transformers model -> :class:`ModelFacts` (class, config, dtypes, devices, device map,
  footprint, the first rows of its input embedding);
* a peft model -> :class:`AdapterFacts` (its base's facts and the adapter, saved with
  ``save_pretrained``);
* a tokenizer -> the tokenizer, saved with ``save_pretrained`` and loaded back (with its
  padding and truncation sides);
* a class -> :class:`ClassRef`; an exception -> :class:`ExceptionRef`; a config object
  (``BitsAndBytesConfig``, ``LoraConfig``, ...) -> :class:`ConfigRef` (its ``to_dict()``);
* ``____`` or a missing variable -> :data:`PLACEHOLDER`; anything else -> :class:`Opaque`.
"""

from __future__ import annotations

import ast
import math
import numbers
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from .dtypes import DTYPES


KIND = "__kind__"
MAX_ANSWER_BYTES = 4_000_000          # one question's literal
MAX_TENSOR_BYTES = 64_000_000         # one question's tensors
MAX_ITEMS = 100_000                   # elements of containers in one answer
MAX_DEPTH = 12
EMBEDDING_ROWS = 64                   # rows of a model's input embedding kept to tell trained weights from random


class Placeholder:
    """The blank ``____`` in an exercise cell: replace it with your answer."""

    _is_course_placeholder = True

    def __repr__(self) -> str:
        return "____"


____ = Placeholder()


def is_placeholder(value) -> bool:
    """True for ``____`` (duck-typed, so a re-imported copy of this module agrees)."""
    return getattr(type(value), "_is_course_placeholder", False) is True


class AnswerError(Exception):
    """The saved answer could not be read (missing, too large, or not plain data)."""


@dataclass(frozen=True)
class ClassRef:
    """A class, by name: ``module``, ``name`` and the qualified names of its bases (its MRO)."""

    module: str
    name: str
    mro: tuple[str, ...] = ()

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def is_subclass_of(self, qualname: str) -> bool:
        """True if ``qualname`` (e.g. ``builtins.BaseException``) is this class or one of its bases."""
        return qualname == self.qualname or qualname in self.mro


@dataclass(frozen=True)
class ExceptionRef:
    """An exception instance: its class and message."""

    type: ClassRef
    message: str


@dataclass(frozen=True)
class ConfigRef:
    """A configuration object (``BitsAndBytesConfig``, ``LoraConfig``...): its class and ``to_dict()``."""

    type: ClassRef
    values: dict


@dataclass(frozen=True)
class Opaque:
    """A value of a kind that answers never take (shown in messages by its type)."""

    type: ClassRef
    text: str


@dataclass(frozen=True)
class ModelFacts:
    """What a check can know about a model without the model."""

    type: ClassRef
    model_type: str | None
    config: dict
    num_parameters: int
    parameter_names: tuple[str, ...]
    dtypes: frozenset                 # torch dtypes of the floating-point parameters
    device: torch.device              # model.device (its first parameter's)
    on_meta: bool                     # some parameters have no data (meta device)
    hf_device_map: dict | None
    memory_footprint: int             # get_memory_footprint()
    is_quantized: bool
    quantization_config: dict | None
    has_4bit_layers: bool             # bitsandbytes Linear4bit modules inside
    attn_implementation: str | None
    num_embeddings: int | None
    embedding_rows: torch.Tensor | None   # the first EMBEDDING_ROWS rows, float32


@dataclass(frozen=True)
class AdapterFacts:
    """A peft model: its base model's facts and the adapter folder (``save_pretrained``)."""

    type: ClassRef
    base: ModelFacts
    lora_parameters: int              # how many parameters named lora_A/lora_B
    folder: Path


class _Placeholder:
    def __repr__(self) -> str:
        return "PLACEHOLDER"


PLACEHOLDER = _Placeholder()  # what ``____`` and missing variables load as


# --------------------------------------------------------------------------- save (in the learner's process)

class _Store:
    """Where one question's tensors and folders go while its answers are encoded."""

    def __init__(self, folder: Path, question: str):
        self.root, self.question, self.tensors, self.items = folder, question, {}, 0

    def tensor(self, t: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t.detach().to("cpu").contiguous().clone()
        return key

    def subfolder(self, name: str) -> Path:
        path = self.root / self.question / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def class_ref(cls) -> ClassRef:
    """The :class:`ClassRef` of a class."""
    mro = tuple(f"{c.__module__}.{c.__qualname__}" for c in getattr(cls, "__mro__", (cls,))[1:])
    return ClassRef(str(getattr(cls, "__module__", "?")), str(getattr(cls, "__qualname__", cls)), mro)


def _class_data(cls) -> dict:
    ref = class_ref(cls)
    return {KIND: "class", "module": ref.module, "name": ref.name, "mro": list(ref.mro)}


def _opaque(value, why: str = "") -> dict:
    try:
        text = why or repr(value)
    except Exception as e:  # noqa: BLE001 - a repr that raises is still an answer of some kind
        text = f"<repr failed: {type(e).__name__}>"
    return {KIND: "opaque", "type": _class_data(type(value)), "text": str(text)[:200]}


def _key(k):
    if k is None or isinstance(k, (bool, int, str)):
        return k
    if isinstance(k, float) and math.isfinite(k):
        return k
    return str(k)


def _model_data(model, store: _Store) -> dict:
    params = list(model.named_parameters())
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(emb, "weight", None)
    rows = None
    if isinstance(weight, torch.Tensor) and weight.dim() == 2 and not weight.is_meta and weight.is_floating_point():
        rows = {KIND: "tensor", "key": store.tensor(weight[:EMBEDDING_ROWS].float())}
    config = getattr(model, "config", None)
    qconfig = getattr(config, "quantization_config", None)
    if qconfig is not None and not isinstance(qconfig, dict):
        qconfig = qconfig.to_dict()
    device_map = getattr(model, "hf_device_map", None)
    return {KIND: "model", "type": _class_data(type(model)),
            "model_type": getattr(config, "model_type", None),
            "config": _encode(config.to_dict() if config is not None else {}, store, 1),
            "num_parameters": int(model.num_parameters()),
            "parameter_names": [n for n, _ in params],
            "dtypes": sorted({str(p.dtype).removeprefix("torch.") for _, p in params if p.is_floating_point()}),
            "device": str(model.device),
            "on_meta": any(p.is_meta for _, p in params),
            "hf_device_map": _encode(dict(device_map), store, 1) if isinstance(device_map, dict) else None,
            "memory_footprint": int(model.get_memory_footprint()),
            "is_quantized": bool(getattr(model, "is_quantized", False)),
            "quantization_config": _encode(qconfig, store, 1),
            "has_4bit_layers": any(type(m).__name__ == "Linear4bit" for m in model.modules()),
            "attn_implementation": getattr(config, "_attn_implementation", None),
            "num_embeddings": int(weight.shape[0]) if isinstance(weight, torch.Tensor) else None,
            "embedding_rows": rows}


def _encode(value, store: _Store, depth: int = 0):
    """``value`` as a tree of Python literals (tensors and folders go to ``store``)."""
    store.items += 1 + (len(value) if isinstance(value, (list, tuple, set, frozenset, dict)) else 0)
    if depth > MAX_DEPTH or store.items > MAX_ITEMS:
        return _opaque(value, "too large or too deeply nested to be an answer")
    if is_placeholder(value):
        return {KIND: "placeholder"}
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    if isinstance(value, str):
        return str.__str__(value)  # a plain str, whatever the subclass says about itself
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else {KIND: "float", "text": repr(value)}
    if isinstance(value, torch.dtype):
        return {KIND: "dtype", "name": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {KIND: "device", "name": str(value)}
    if isinstance(value, torch.Tensor):
        if value.is_meta or value.numel() * value.element_size() > MAX_TENSOR_BYTES:
            return _opaque(value, f"a tensor of shape {tuple(value.shape)} on {value.device} (no data kept)")
        return {KIND: "tensor", "key": store.tensor(value), "device": str(value.device)}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, store, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, (set, frozenset)):
        return {KIND: "set", "items": [_encode(v, store, depth + 1) for v in value]}
    if isinstance(value, Mapping):
        items = {_key(k): _encode(v, store, depth + 1) for k, v in value.items()}
        if type(value) is dict and KIND not in items:
            return items
        return {KIND: "mapping", "type": _class_data(type(value)), "items": items}
    if isinstance(value, type):
        return _class_data(value)
    if isinstance(value, BaseException):
        return {KIND: "exception", "type": _class_data(type(value)), "message": str(value)[:500]}
    peft = sys.modules.get("peft")
    if peft is not None and isinstance(value, peft.PeftModel):
        folder = store.subfolder(f"adapter{depth}-{store.items}")
        value.save_pretrained(str(folder))
        lora = sum("lora_A" in n or "lora_B" in n for n, _ in value.named_parameters())
        return {KIND: "adapter", "type": _class_data(type(value)), "folder": folder.name,
                "base": _model_data(value.get_base_model(), store), "lora_parameters": lora}
    transformers = sys.modules.get("transformers")
    if transformers is not None:
        if isinstance(value, transformers.PreTrainedModel):
            return _model_data(value, store)
        if isinstance(value, transformers.PreTrainedTokenizerBase):
            folder = store.subfolder(f"tokenizer{depth}-{store.items}")
            value.save_pretrained(str(folder))
            # save_pretrained keeps the tokenizer's files, not the sides set on the object afterwards
            return {KIND: "tokenizer", "folder": folder.name, "padding_side": str(value.padding_side),
                    "truncation_side": str(value.truncation_side)}
    if callable(getattr(value, "to_dict", None)) and not isinstance(value, type):
        return {KIND: "config", "type": _class_data(type(value)), "values": _encode(value.to_dict(), store, depth + 1)}
    return _opaque(value)


def encode(value, store: _Store):
    """:func:`_encode`, but never raises: a value that cannot be read becomes :class:`Opaque`."""
    try:
        return _encode(value, store)
    except Exception as e:  # noqa: BLE001 - learner objects can raise anything; that is not a verdict
        return _opaque(value, f"could not be read as an answer ({type(e).__name__}: {str(e)[:120]})")


def save(question: str, values: dict, folder) -> None:
    """Write the answers ``{variable: value}`` of ``question`` (e.g. ``q1``) into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = _Store(folder, question)
    tree = {str(var): encode(value, store) for var, value in values.items()}
    text = repr(tree)
    ast.literal_eval(text)  # fail here, in the learner's process, if anything is not a literal
    (folder / f"{question}.answer").write_text(text, encoding="utf-8")
    if store.tensors:
        save_file(store.tensors, str(folder / f"{question}.safetensors"))


# --------------------------------------------------------------------------- load (in the checking process)
#
# The records were written in the learner's kernel, so they may be forged. :func:`load` accepts a record
# only if each of its fields has exactly the type :func:`save` writes (one schema per kind, in
# :data:`_SCHEMAS`); anything else raises :class:`AnswerError` naming the field. A check can then rely on
# the declared types of :class:`ModelFacts` and the other records.

MAX_FOLDER_BYTES = 256_000_000        # one saved tokenizer or adapter folder, all files together
MAX_FOLDER_ENTRIES = 256              # files and folders inside it
MAX_NESTING = 100                     # levels of nested containers in one answer
_KEY_TYPES = (type(None), bool, int, float, str)   # what :func:`_key` leaves as a dict key


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file (not a link, FIFO or device) of at most ``limit`` bytes."""
    import os
    import stat

    try:  # O_NOFOLLOW: a link is refused; O_NONBLOCK: a FIFO swapped in is never waited on
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise AnswerError("no answer was saved for it (the grader's extraction did not run this far)") from None
    except OSError:
        raise AnswerError(f"{path.name} is not a regular file") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise AnswerError(f"{path.name} is not a regular file")
        if st.st_size > limit:
            raise AnswerError(f"{path.name} is larger than {limit} bytes")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise AnswerError(f"{path.name} is larger than {limit} bytes")
    return data


def _check_tree(path: Path) -> None:
    """Refuse a saved folder holding anything but regular files and folders, or too much of them.

    Walks with ``lstat`` (never following a link, never opening a FIFO or a device), so that a
    forged folder can neither point the loader outside the answers nor make it wait forever.
    """
    import os
    import stat

    entries, total, todo = 0, 0, [(path, 0)]
    while todo:
        folder, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise AnswerError("a saved folder is nested too deeply")
        with os.scandir(folder) as it:
            for entry in it:
                entries += 1
                if entries > MAX_FOLDER_ENTRIES:
                    raise AnswerError(f"a saved folder holds more than {MAX_FOLDER_ENTRIES} files")
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    todo.append((Path(entry.path), depth + 1))
                elif stat.S_ISREG(st.st_mode):
                    total += st.st_size
                    if total > MAX_FOLDER_BYTES:
                        raise AnswerError(f"a saved folder is larger than {MAX_FOLDER_BYTES} bytes")
                else:
                    raise AnswerError(f"{entry.name!r} in a saved folder is not a regular file or folder "
                                      "(a link, a FIFO, a device or a socket)")


def _inside(root: Path, name) -> Path:
    """The saved folder ``root/name``: a plain name, a real folder (no link), holding only files and folders."""
    import os
    import stat

    if type(name) is not str or "/" in name or "\\" in name or "\0" in name or name in ("", ".", ".."):
        raise AnswerError("a saved folder name is not a plain name")
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode) or not stat.S_ISDIR(os.lstat(root / name).st_mode):
            raise FileNotFoundError
    except (FileNotFoundError, NotADirectoryError):
        raise AnswerError("a saved folder is missing or outside the answers folder") from None
    _check_tree(root / name)
    return root / name


# --- field types: each takes the raw field and returns the decoded value, or raises AnswerError

class _Context:
    def __init__(self, tensors: dict, root: Path):
        self.tensors, self.root = tensors, root


def _wrong(where: str, what: str) -> AnswerError:
    return AnswerError(f"the saved record is malformed: `{where}` should be {what}")


def _str(value, where, ctx, depth):
    if type(value) is not str:
        raise _wrong(where, "a string")
    return value


def _bool(value, where, ctx, depth):
    if type(value) is not bool:
        raise _wrong(where, "True or False")
    return value


def _count(value, where, ctx, depth):
    if type(value) is not int or value < 0:
        raise _wrong(where, "an integer >= 0")
    return value


def _optional(field):
    def check(value, where, ctx, depth):
        return None if value is None else field(value, where, ctx, depth)
    return check


def _strs(value, where, ctx, depth):
    if type(value) not in (list, tuple) or any(type(v) is not str for v in value):
        raise _wrong(where, "a list of strings")
    return tuple(value)


def _str_key_dict(value, where, ctx, depth):
    """A dict of answer data whose keys are strings (a config's ``to_dict()``)."""
    value = _decode(value, ctx, depth + 1)
    if type(value) is not dict or any(type(k) is not str for k in value):
        raise _wrong(where, "a dict with string keys")
    return value


def _mapping_items(value, where, ctx, depth):
    """The items of a mapping that was not a plain dict: a dict whose keys :func:`_key` wrote."""
    if type(value) is not dict or any(type(k) not in _KEY_TYPES for k in value):
        raise _wrong(where, "a dict with numbers or strings as keys")
    return {k: _decode(v, ctx, depth + 1) for k, v in value.items()}


def _dtype_name(value, where, ctx, depth):
    if type(value) is not str or value not in DTYPES:
        raise _wrong(where, "the name of a torch dtype")
    return DTYPES[value]


def _float_dtypes(value, where, ctx, depth):
    if type(value) not in (list, tuple):
        raise _wrong(where, "a list of dtype names")
    dtypes = frozenset(_dtype_name(v, where, ctx, depth) for v in value)
    if not all(d.is_floating_point for d in dtypes):
        raise _wrong(where, "a list of floating-point dtype names")
    return dtypes


def _device_name(value, where, ctx, depth):
    if type(value) is not str or len(value) > 100:
        raise _wrong(where, "a device name")
    try:
        return torch.device(value)
    except Exception:  # noqa: BLE001 - torch says RuntimeError today; any refusal is a malformed record
        raise _wrong(where, "a device name") from None


def _device_map(value, where, ctx, depth):
    placement = _str_key_dict(value, where, ctx, depth)
    for v in placement.values():
        if not (type(v) is str or (type(v) is int and v >= 0) or isinstance(v, torch.device)):
            raise _wrong(where, "a dict of module names to devices (an int >= 0, a name or a torch.device)")
    return placement


def _tensor_key(value, where, ctx, depth):
    if type(value) is not str or value not in ctx.tensors:
        raise AnswerError(f"the saved record is malformed: `{where}`: a tensor is missing from the saved tensors")
    return ctx.tensors[value]


def _nonfinite(value, where, ctx, depth):
    if value not in ("inf", "-inf", "nan"):
        raise _wrong(where, "'inf', '-inf' or 'nan'")
    return float(value)


def _record_of(kind):
    def check(value, where, ctx, depth):
        if type(value) is not dict or value.get(KIND) != kind:
            raise _wrong(where, f"a record of kind {kind!r}")
        try:
            return _record(value, ctx, depth + 1)
        except AnswerError as e:
            raise AnswerError(f"{e} (in `{where}`)"[:400]) from None
    return check


def _embedding_rows(value, where, ctx, depth):
    if value is None:
        return None
    rows = _record_of("tensor")(value, where, ctx, depth)
    if rows.dtype != torch.float32 or rows.dim() != 2 or rows.shape[0] > EMBEDDING_ROWS:
        raise _wrong(where, f"a float32 tensor of at most {EMBEDDING_ROWS} rows")
    return rows


def _folder(value, where, ctx, depth):
    return _inside(ctx.root, value)


def _side(value, where, ctx, depth):
    if value not in ("left", "right"):
        raise _wrong(where, "'left' or 'right'")
    return value


def _items(value, where, ctx, depth):
    if type(value) not in (list, tuple):
        raise _wrong(where, "a list")
    return [_decode(v, ctx, depth + 1) for v in value]


_CLASS = _record_of("class")
_OPTIONAL = object()  # marks a field a record may leave out


def _model_schema():
    types = {"type": _CLASS, "model_type": _optional(_str), "config": _str_key_dict,
             "num_parameters": _count, "parameter_names": _strs, "dtypes": _float_dtypes,
             "device": _device_name, "on_meta": _bool, "hf_device_map": _optional(_device_map),
             "memory_footprint": _count, "is_quantized": _bool, "quantization_config": _optional(_str_key_dict),
             "has_4bit_layers": _bool, "attn_implementation": _optional(_str), "num_embeddings": _optional(_count),
             "embedding_rows": _embedding_rows}
    assert set(types) == {f.name for f in fields(ModelFacts)}, "ModelFacts and its schema disagree"
    return types


# kind -> (what it loads as, {field: type}); a field given as (type, _OPTIONAL) may be left out.
# Every field of a record must be listed here, and a record with a field not listed is refused.
_SCHEMAS = {
    "placeholder": (lambda: PLACEHOLDER, {}),
    "float": (lambda text: text, {"text": _nonfinite}),
    "dtype": (lambda name: name, {"name": _dtype_name}),
    "device": (lambda name: name, {"name": _device_name}),
    "tensor": (lambda key, device=None: key, {"key": _tensor_key, "device": (_str, _OPTIONAL)}),
    "set": (lambda items: _as_set(items), {"items": _items}),
    "mapping": (lambda type, items: items, {"type": _CLASS, "items": _mapping_items}),
    "class": (ClassRef, {"module": _str, "name": _str, "mro": _strs}),
    "exception": (ExceptionRef, {"type": _CLASS, "message": _str}),
    "config": (ConfigRef, {"type": _CLASS, "values": _str_key_dict}),
    "opaque": (Opaque, {"type": _CLASS, "text": _str}),
    "model": (ModelFacts, _model_schema()),
    "adapter": (AdapterFacts, {"type": _CLASS, "base": _record_of("model"), "lora_parameters": _count,
                               "folder": _folder}),
    "tokenizer": (lambda folder, padding_side, truncation_side: _tokenizer(folder, padding_side, truncation_side),
                  {"folder": _folder, "padding_side": _side, "truncation_side": _side}),
}


def _as_set(items: list) -> set:
    try:
        return set(items)
    except TypeError:
        raise _wrong("set.items", "hashable values") from None


def _tokenizer(folder: Path, padding_side: str, truncation_side: str):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True,
                                         padding_side=padding_side, truncation_side=truncation_side)


def _record(node: dict, ctx: _Context, depth: int):
    """A tagged record (``{KIND: kind, field: ...}``) checked against its kind's schema, then built."""
    kind = node[KIND]
    if type(kind) is not str or kind not in _SCHEMAS:
        raise AnswerError(f"unknown kind of answer {kind!r}"[:120])
    build, schema = _SCHEMAS[kind]
    given = set(node) - {KIND}
    required = {name for name, t in schema.items() if not isinstance(t, tuple)}
    if not required <= given <= set(schema):
        missing, extra = sorted(required - given), sorted(map(str, given - set(schema)))
        raise AnswerError(f"the saved {kind} record is malformed: "
                          + (f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}"[:120]))
    values = {}
    for name, field in schema.items():  # in the schema's order, so that the first bad field is always named
        if name in given:
            field = field[0] if isinstance(field, tuple) else field
            values[name] = field(node[name], f"{kind}.{name}", ctx, depth)
    return build(**values)


def _decode(node, ctx: _Context, depth: int = 0):
    if depth > MAX_NESTING:
        raise AnswerError("the saved answer is nested too deeply")
    t = type(node)
    if node is None or t in (bool, int, float, str, bytes):
        return node
    if t is list:
        return [_decode(v, ctx, depth + 1) for v in node]
    if t is tuple:
        return tuple(_decode(v, ctx, depth + 1) for v in node)
    if t is dict:
        if KIND in node:
            return _record(node, ctx, depth)
        if not all(type(k) in _KEY_TYPES for k in node):
            raise AnswerError("the saved answer is malformed: a dict key is not a number or a string")
        return {k: _decode(v, ctx, depth + 1) for k, v in node.items()}
    if t in (set, frozenset):
        raise AnswerError("the saved answer is malformed: sets are saved as tagged lists")
    raise AnswerError(f"the saved answer is malformed: {t.__name__} is not answer data")


def load(question: str, folder) -> dict:
    """The answers of ``question`` saved in ``folder`` by :func:`save`: ``{variable: value}``.

    Raises :class:`AnswerError` when they are missing, not plain data, or not records of the shape
    :func:`save` writes (:data:`_SCHEMAS`).
    """
    import os

    from safetensors.torch import load as load_tensors

    folder = Path(folder)
    text = _read_regular(folder / f"{question}.answer", MAX_ANSWER_BYTES)
    try:
        tree = ast.literal_eval(text.decode("utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        raise AnswerError(f"the saved answer is not plain data ({type(e).__name__})") from None
    tensors = {}
    if os.path.lexists(folder / f"{question}.safetensors"):
        try:
            tensors = load_tensors(_read_regular(folder / f"{question}.safetensors", MAX_TENSOR_BYTES))
        except AnswerError:
            raise
        except Exception as e:  # noqa: BLE001 - a malformed file is the answer's problem
            raise AnswerError(f"the saved tensors cannot be read ({type(e).__name__})") from None
    if type(tree) is not dict or not all(type(k) is str for k in tree):
        raise AnswerError("the saved answer is not a dict of variables")
    ctx = _Context(tensors, folder / question)
    try:
        return {k: _decode(v, ctx) for k, v in tree.items()}
    except AnswerError:
        raise
    except Exception as e:  # noqa: BLE001 - e.g. a tokenizer folder its loader refuses: not a verdict
        raise AnswerError(f"the saved answer is malformed ({type(e).__name__}: {str(e)[:120]})") from None
