"""Answers as plain data: what a check sees of a learner's variables.

A check never looks at the learner's live objects. :func:`save` turns each answer into plain data
in a folder, :func:`load` reads it back, and the check runs on what :func:`load` returns. In a
notebook ``q1.check()`` does both in the same process (instant feedback); the grader runs
:func:`save` in the learner's kernel and :func:`load` plus the checks in a separate, clean process,
so that code in the notebook can change the data but never the verdict (README, "Threat model").

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

from .checking import is_placeholder

KIND = "__kind__"
MAX_ANSWER_BYTES = 4_000_000          # one question's literal
MAX_TENSOR_BYTES = 64_000_000         # one question's tensors
MAX_ITEMS = 100_000                   # elements of containers in one answer
MAX_DEPTH = 12
EMBEDDING_ROWS = 64                   # rows of a model's input embedding kept to tell trained weights from random


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

def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file (not a link, FIFO or device) of at most ``limit`` bytes."""
    import os
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise AnswerError("no answer was saved for it (the grader's extraction did not run this far)") from None
    if not stat.S_ISREG(st.st_mode):
        raise AnswerError(f"{path.name} is not a regular file")
    if st.st_size > limit:
        raise AnswerError(f"{path.name} is larger than {limit} bytes")
    return path.read_bytes()


def _inside(root: Path, name) -> Path:
    if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
        raise AnswerError("a saved folder name is not a plain name")
    path = root / name
    if path.is_symlink() or not path.resolve().is_relative_to(root.resolve()) or not path.is_dir():
        raise AnswerError("a saved folder is missing or outside the answers folder")
    return path


def _decode(node, tensors: dict, root: Path):
    if isinstance(node, list):
        return [_decode(v, tensors, root) for v in node]
    if isinstance(node, tuple):
        return tuple(_decode(v, tensors, root) for v in node)
    if not isinstance(node, dict):
        if isinstance(node, (set, frozenset)):
            raise AnswerError("sets are saved as tagged lists")
        return node
    kind = node.get(KIND)
    if kind is None:
        return {k: _decode(v, tensors, root) for k, v in node.items()}
    if kind == "placeholder":
        return PLACEHOLDER
    if kind == "float":
        return float(node["text"])
    if kind == "dtype":
        dtype = getattr(torch, str(node["name"]), None)
        if not isinstance(dtype, torch.dtype):
            raise AnswerError(f"unknown dtype {node['name']!r}")
        return dtype
    if kind == "device":
        return torch.device(node["name"])
    if kind == "tensor":
        if node["key"] not in tensors:
            raise AnswerError("a tensor is missing from the saved tensors")
        return tensors[node["key"]]
    if kind == "set":
        return set(_decode(v, tensors, root) for v in node["items"])
    if kind == "mapping":
        return {k: _decode(v, tensors, root) for k, v in node["items"].items()}
    if kind == "class":
        return ClassRef(str(node["module"]), str(node["name"]), tuple(map(str, node["mro"])))
    if kind == "exception":
        return ExceptionRef(_decode(node["type"], tensors, root), str(node["message"]))
    if kind == "config":
        return ConfigRef(_decode(node["type"], tensors, root), _decode(node["values"], tensors, root))
    if kind == "opaque":
        return Opaque(_decode(node["type"], tensors, root), str(node["text"]))
    if kind == "model":
        values = {f.name: _decode(node[f.name], tensors, root) for f in fields(ModelFacts)}
        values["dtypes"] = frozenset(_decode({KIND: "dtype", "name": d}, tensors, root) for d in node["dtypes"])
        values["device"] = torch.device(node["device"])
        values["parameter_names"] = tuple(node["parameter_names"])
        return ModelFacts(**values)
    if kind == "adapter":
        return AdapterFacts(_decode(node["type"], tensors, root), _decode(node["base"], tensors, root),
                            int(node["lora_parameters"]), _inside(root, node["folder"]))
    if kind == "tokenizer":
        from transformers import AutoTokenizer
        sides = {k: node[k] for k in ("padding_side", "truncation_side") if node.get(k) in ("left", "right")}
        return AutoTokenizer.from_pretrained(str(_inside(root, node["folder"])), trust_remote_code=False,
                                             local_files_only=True, **sides)
    raise AnswerError(f"unknown kind of answer {kind!r}")


def load(question: str, folder) -> dict:
    """The answers of ``question`` saved in ``folder`` by :func:`save`: ``{variable: value}``.

    Raises :class:`AnswerError` when they are missing or not plain data.
    """
    from safetensors.torch import load as load_tensors

    folder = Path(folder)
    text = _read_regular(folder / f"{question}.answer", MAX_ANSWER_BYTES)
    try:
        tree = ast.literal_eval(text.decode("utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        raise AnswerError(f"the saved answer is not plain data ({type(e).__name__})") from None
    tensors = {}
    if (folder / f"{question}.safetensors").exists():
        try:
            tensors = load_tensors(_read_regular(folder / f"{question}.safetensors", MAX_TENSOR_BYTES))
        except AnswerError:
            raise
        except Exception as e:  # noqa: BLE001 - a malformed file is the answer's problem
            raise AnswerError(f"the saved tensors cannot be read ({type(e).__name__})") from None
    if not isinstance(tree, dict):
        raise AnswerError("the saved answer is not a dict of variables")
    try:
        return {str(k): _decode(v, tensors, folder / question) for k, v in tree.items()}
    except AnswerError:
        raise
    except Exception as e:  # noqa: BLE001 - malformed data (a missing field, a wrong type) is not a verdict
        raise AnswerError(f"the saved answer is malformed ({type(e).__name__}: {str(e)[:120]})") from None
