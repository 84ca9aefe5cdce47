"""Answers as plain data (helpers/answers.py): what each kind of value loads back as, and what is refused."""

import ast
import math
import os
import threading
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import PreTrainedTokenizerBase

from helpers.answers import (EMBEDDING_ROWS, PLACEHOLDER, AdapterFacts, AnswerError, ClassRef, ConfigRef,
                             ExceptionRef, ModelFacts, Opaque, load, save)
from helpers.checking import ____


def roundtrip(value, tmp_path):
    save("q1", {"x": value}, tmp_path)
    return load("q1", tmp_path)["x"]


@pytest.mark.parametrize("value", [3, -1.5, "text", None, True, [1, [2, 3]], (1, "a"), {0: "24GiB", "cpu": 10**9},
                                   {1, 2}, b"bytes"])
def test_literals_come_back_equal(value, tmp_path):
    back = roundtrip(value, tmp_path)
    assert back == value and type(back) is type(value)


def test_torch_values(tmp_path):
    t = torch.arange(6).reshape(2, 3)
    assert torch.equal(roundtrip(t, tmp_path), t)
    assert roundtrip(torch.bfloat16, tmp_path) is torch.bfloat16
    assert roundtrip(torch.device("cpu"), tmp_path) == torch.device("cpu")
    assert math.isnan(roundtrip(float("nan"), tmp_path))


def test_a_str_subclass_cannot_carry_its_own_equality(tmp_path):
    class AlwaysEqual(str):
        def __eq__(self, other):
            return True
        __hash__ = str.__hash__
    back = roundtrip(AlwaysEqual("wrong"), tmp_path)
    assert type(back) is str and back != "right"


def test_rich_objects_become_records(tmp_path):
    from transformers import BatchEncoding, BitsAndBytesConfig
    assert roundtrip(ValueError, tmp_path) == ClassRef("builtins", "ValueError", ("builtins.Exception",
                                                        "builtins.BaseException", "builtins.object"))
    err = roundtrip(OSError("no such file"), tmp_path)
    assert isinstance(err, ExceptionRef) and err.type.name == "OSError" and err.message == "no such file"
    config = roundtrip(BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16), tmp_path)
    assert isinstance(config, ConfigRef) and config.values["load_in_4bit"] is True
    assert config.values["bnb_4bit_compute_dtype"] == "bfloat16"
    enc = roundtrip(BatchEncoding({"input_ids": torch.tensor([[1, 2]])}), tmp_path)
    assert type(enc) is dict and torch.equal(enc["input_ids"], torch.tensor([[1, 2]]))
    assert isinstance(roundtrip(object(), tmp_path), Opaque)
    assert roundtrip(____, tmp_path) is PLACEHOLDER


def test_a_model_becomes_facts(tiny, tmp_path):
    facts = roundtrip(tiny, tmp_path)
    assert isinstance(facts, ModelFacts) and facts.type.name == type(tiny).__name__
    assert facts.num_parameters == tiny.num_parameters() and facts.dtypes == {torch.float32}
    assert facts.embedding_rows.shape[1] == tiny.get_input_embeddings().weight.shape[1]


def test_loading_refuses_what_is_not_plain_data(tmp_path):
    with pytest.raises(AnswerError, match="no answer was saved"):
        load("q1", tmp_path)
    (tmp_path / "q1.answer").write_text("__import__('os').system('echo pwned')")
    with pytest.raises(AnswerError, match="not plain data"):
        load("q1", tmp_path)
    (tmp_path / "q1.answer").unlink()
    os.symlink("/dev/zero", tmp_path / "q1.answer")
    with pytest.raises(AnswerError, match="not a regular file"):
        load("q1", tmp_path)
    (tmp_path / "q1.answer").unlink()
    (tmp_path / "q1.answer").write_text(repr({"x": {"__kind__": "tokenizer", "folder": "../../etc",
                                                    "padding_side": "left", "truncation_side": "right"}}))
    with pytest.raises(AnswerError, match="not a plain name"):
        load("q1", tmp_path)
    (tmp_path / "q1.answer").write_text(repr({"x": {"__kind__": "model"}}))
    with pytest.raises(AnswerError, match="malformed"):
        load("q1", tmp_path)


def test_a_tokenizer_comes_back_with_its_sides(tok, tmp_path):
    tok.padding_side = "left"
    try:
        back = roundtrip(tok, tmp_path)
    finally:
        tok.padding_side = "right"
    assert back("Hello")["input_ids"] == tok("Hello")["input_ids"] and back.padding_side == "left"


# --------------------------------------------------------------------------- forged records

KEY_TYPES = (type(None), bool, int, float, str)


def assert_well_typed(value):
    """``value`` is answer data: records with fields of exactly their declared types, plain data elsewhere."""
    if isinstance(value, ClassRef):
        assert type(value.module) is str and type(value.name) is str
        assert type(value.mro) is tuple and all(type(m) is str for m in value.mro)
    elif isinstance(value, (ExceptionRef, ConfigRef, Opaque)):
        assert type(value.type) is ClassRef
        assert_well_typed(value.type)
        if isinstance(value, ConfigRef):
            assert type(value.values) is dict and all(type(k) is str for k in value.values)
            assert_well_typed(value.values)
        else:
            assert type(value.message if isinstance(value, ExceptionRef) else value.text) is str
    elif isinstance(value, ModelFacts):
        assert type(value.type) is ClassRef
        assert_well_typed(value.type)
        assert value.model_type is None or type(value.model_type) is str
        assert type(value.config) is dict and all(type(k) is str for k in value.config)
        q = value.quantization_config
        assert q is None or type(q) is dict and all(type(k) is str for k in q)
        assert type(value.num_parameters) is int and value.num_parameters >= 0
        assert type(value.memory_footprint) is int and value.memory_footprint >= 0
        assert value.num_embeddings is None or type(value.num_embeddings) is int and value.num_embeddings >= 0
        assert type(value.parameter_names) is tuple and all(type(n) is str for n in value.parameter_names)
        assert type(value.dtypes) is frozenset and all(isinstance(d, torch.dtype) and d.is_floating_point
                                                       for d in value.dtypes)
        assert type(value.device) is torch.device
        assert all(type(b) is bool for b in (value.on_meta, value.is_quantized, value.has_4bit_layers))
        if value.hf_device_map is not None:
            assert type(value.hf_device_map) is dict
            assert all(type(k) is str and (type(v) is str or type(v) is int and v >= 0 or type(v) is torch.device)
                       for k, v in value.hf_device_map.items())
        assert value.attn_implementation is None or type(value.attn_implementation) is str
        rows = value.embedding_rows
        assert rows is None or (isinstance(rows, torch.Tensor) and rows.dtype == torch.float32 and rows.dim() == 2
                                and rows.shape[0] <= EMBEDDING_ROWS)
    elif isinstance(value, AdapterFacts):
        assert type(value.type) is ClassRef and type(value.base) is ModelFacts
        assert type(value.lora_parameters) is int and value.lora_parameters >= 0
        assert isinstance(value.folder, Path) and value.folder.is_dir() and not value.folder.is_symlink()
        assert_well_typed(value.base)
    elif isinstance(value, dict):
        assert all(type(k) in KEY_TYPES for k in value)
        for v in value.values():
            assert_well_typed(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            assert_well_typed(v)
    else:
        assert value is PLACEHOLDER or value is None or isinstance(value, (
            bool, int, float, str, bytes, torch.Tensor, torch.dtype, torch.device, PreTrainedTokenizerBase)), value

#
# The grader saves the answers in the learner's kernel, so a learner can write any record there.
# load() takes a record only if each field has exactly the type save() writes; anything else is an
# AnswerError naming the field, never a record with odd fields that a check would trip on.

CLASS = {"__kind__": "class", "module": "transformers.models.llama.modeling_llama", "name": "LlamaForCausalLM",
         "mro": ["transformers.modeling_utils.PreTrainedModel", "builtins.object"]}
MODEL = {"__kind__": "model", "type": CLASS, "model_type": "llama",
         "config": {"model_type": "llama", "id2label": {0: "LABEL_0"}, "rope_scaling": None},
         "num_parameters": 134515008, "parameter_names": ["model.embed_tokens.weight", "model.norm.weight"],
         "dtypes": ["bfloat16"], "device": "cuda:0", "on_meta": False,
         "hf_device_map": {"model.embed_tokens": 0, "model.layers.0": "cpu", "lm_head": "disk",
                           "model.norm": {"__kind__": "device", "name": "cuda:1"}},
         "memory_footprint": 269030016, "is_quantized": False, "quantization_config": None,
         "has_4bit_layers": False, "attn_implementation": "sdpa", "num_embeddings": 49152,
         "embedding_rows": {"__kind__": "tensor", "key": "rows"}}
# one well-formed record of each kind, written by hand; "folder" names a folder the test makes
RECORDS = {
    "placeholder": {"__kind__": "placeholder"},
    "float": {"__kind__": "float", "text": "-inf"},
    "dtype": {"__kind__": "dtype", "name": "bfloat16"},
    "device": {"__kind__": "device", "name": "cuda:1"},
    "tensor": {"__kind__": "tensor", "key": "ids", "device": "cuda:0"},
    "set": {"__kind__": "set", "items": [1, "a", None]},
    "mapping": {"__kind__": "mapping", "type": CLASS, "items": {0: "24GiB", "cpu": 10**9, None: [1]}},
    "class": CLASS,
    "exception": {"__kind__": "exception", "type": CLASS, "message": "no such file"},
    "config": {"__kind__": "config", "type": CLASS, "values": {"load_in_4bit": True, "nested": {1: 2.5}}},
    "opaque": {"__kind__": "opaque", "type": CLASS, "text": "<object>"},
    "model": MODEL,
    "adapter": {"__kind__": "adapter", "type": CLASS, "base": MODEL, "lora_parameters": 64, "folder": "adapter"},
    "tokenizer": {"__kind__": "tokenizer", "folder": "tokenizer", "padding_side": "left", "truncation_side": "right"},
}
LOADS_AS = {"placeholder": type(PLACEHOLDER), "float": float, "dtype": torch.dtype, "device": torch.device,
            "tensor": torch.Tensor, "set": set, "mapping": dict, "class": ClassRef, "exception": ExceptionRef,
            "config": ConfigRef, "opaque": Opaque, "model": ModelFacts, "adapter": AdapterFacts,
            "tokenizer": PreTrainedTokenizerBase}
TENSORS = {"rows": torch.zeros(4, 8), "ids": torch.tensor([[1, 2]]), "int_rows": torch.zeros(4, 8, dtype=torch.long),
           "flat_rows": torch.zeros(8), "many_rows": torch.zeros(65, 8), "half_rows": torch.zeros(4, 8).half()}


@pytest.fixture(scope="module")
def forged_folder(tok, tmp_path_factory):
    """An answers folder with the tensors and folders the hand-written records name (q1/adapter, q1/tokenizer)."""
    from safetensors.torch import save_file
    folder = tmp_path_factory.mktemp("forged")
    save_file(TENSORS, str(folder / "q1.safetensors"))
    (folder / "q1" / "adapter").mkdir(parents=True)
    (folder / "q1" / "adapter" / "adapter_config.json").write_text("{}")
    tok.save_pretrained(str(folder / "q1" / "tokenizer"))
    return folder


def load_forged(folder, text: str):
    (folder / "q1.answer").write_text(text)
    return load("q1", folder)


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_hand_written_records_of_each_kind_load(kind, forged_folder):
    value = load_forged(forged_folder, repr({"x": RECORDS[kind]}))["x"]
    assert isinstance(value, LOADS_AS[kind])
    assert_well_typed(value)


# (kind, field, a value of the wrong type or out of range)
WRONG_FIELDS = [
    ("class", "module", None), ("class", "name", 3), ("class", "mro", "builtins.object"), ("class", "mro", [1]),
    ("exception", "type", "ValueError"), ("exception", "type", RECORDS["opaque"]), ("exception", "message", b"x"),
    ("config", "type", None), ("config", "values", [("a", 1)]), ("config", "values", {1: 2}),
    ("config", "values", RECORDS["opaque"]), ("opaque", "text", 5), ("opaque", "type", {"module": "x"}),
    ("model", "type", "LlamaForCausalLM"), ("model", "model_type", 3), ("model", "config", [("a", 1)]),
    ("model", "config", {1: 2}), ("model", "config", None), ("model", "num_parameters", -1),
    ("model", "num_parameters", True), ("model", "num_parameters", 1.5e8), ("model", "num_parameters", "134515008"),
    ("model", "parameter_names", "model.norm.weight"), ("model", "parameter_names", [1]),
    ("model", "dtypes", ["int64"]), ("model", "dtypes", ["nonsense"]), ("model", "dtypes", "float32"),
    ("model", "dtypes", ["_dynamo"]), ("model", "device", "gpu"), ("model", "device", 0),
    ("model", "device", "cuda:" + "9" * 30), ("model", "on_meta", 0), ("model", "on_meta", "False"),
    ("model", "hf_device_map", {"": -1}), ("model", "hf_device_map", {1: "cpu"}), ("model", "hf_device_map", {"": [0]}),
    ("model", "hf_device_map", {"": True}), ("model", "hf_device_map", "auto"), ("model", "memory_footprint", -5),
    ("model", "memory_footprint", None), ("model", "is_quantized", None), ("model", "quantization_config", {2: 1}),
    ("model", "quantization_config", "nf4"), ("model", "has_4bit_layers", 1),
    ("model", "attn_implementation", ["eager"]),
    ("model", "num_embeddings", -3), ("model", "num_embeddings", 4.0),
    ("model", "embedding_rows", {"__kind__": "tensor", "key": "int_rows"}),
    ("model", "embedding_rows", {"__kind__": "tensor", "key": "flat_rows"}),
    ("model", "embedding_rows", {"__kind__": "tensor", "key": "many_rows"}),
    ("model", "embedding_rows", {"__kind__": "tensor", "key": "half_rows"}),
    ("model", "embedding_rows", {"__kind__": "tensor", "key": "missing"}),
    ("model", "embedding_rows", [[0.0] * 8]),
    ("adapter", "type", None), ("adapter", "base", CLASS), ("adapter", "base", None),
    ("adapter", "lora_parameters", -1), ("adapter", "lora_parameters", "64"),
    ("tokenizer", "padding_side", "middle"), ("tokenizer", "truncation_side", None),
    ("dtype", "name", "Tensor"), ("dtype", "name", 5), ("dtype", "name", "_dynamo"), ("device", "name", "nowhere:x"),
    ("device", "name", 0), ("float", "text", "1.5"), ("float", "text", 1.5), ("tensor", "key", 0),
    ("tensor", "key", "absent"), ("tensor", "device", 0), ("set", "items", {1: 2}), ("set", "items", [[1]]),
    ("mapping", "items", [1]), ("mapping", "items", {(1, 2): 3}), ("mapping", "type", None),
]


@pytest.mark.parametrize("kind, field, value", WRONG_FIELDS, ids=[f"{k}.{f}={v!r}"[:60] for k, f, v in WRONG_FIELDS])
def test_a_field_of_the_wrong_type_is_refused(kind, field, value, forged_folder):
    record = dict(RECORDS[kind], **{field: value})
    with pytest.raises(AnswerError) as e:
        load_forged(forged_folder, repr({"x": record}))
    assert f"`{kind}.{field}`" in str(e.value), str(e.value)  # the message names the field


@pytest.mark.parametrize("text, why", [
    (repr({"x": dict(CLASS, extra=1)}), "unexpected extra"),
    (repr({"x": {k: v for k, v in MODEL.items() if k != "device"}}), "missing device"),
    (repr({"x": {"__kind__": "pickle", "data": "..."}}), "unknown kind"),
    (repr({"x": {"__kind__": ["model"]}}), "unknown kind"),
    ("{'x': 1+2j}", "complex"),
    ("{'x': [...]}", "ellipsis"),
    ("{'x': {(1, 2): 3}}", "key"),
    ("{'x': {1, 2}}", "sets are saved as tagged lists"),
    ("{1: 2}", "not a dict of variables"),
    ("[1, 2]", "not a dict of variables"),
    ("{'x': " + "[" * 150 + "]" * 150 + "}", "nested too deeply"),
], ids=["extra-field", "missing-field", "unknown-kind", "unhashable-kind", "complex", "ellipsis", "tuple-key",
        "bare-set", "int-variable-name", "not-a-dict", "deep"])
def test_malformed_answer_files_are_refused(text, why, forged_folder):
    with pytest.raises(AnswerError, match=why):
        load_forged(forged_folder, text)


# --------------------------------------------------------------------------- saved folders

def load_within(folder, seconds: float = 30):
    """load("q1", folder) in a thread: what it returned or raised, or a failure if it hangs (a FIFO opened)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = load("q1", folder)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"load() still runs after {seconds} s: it waits on something in the folder"
    return outcome


def saved_tokenizer(tok, folder) -> Path:
    save("q1", {"x": tok}, folder)
    (path,) = (folder / "q1").iterdir()
    return path


@pytest.mark.parametrize("plant", ["fifo", "link-to-passwd", "link-in-subfolder", "link-to-folder", "socket"])
def test_a_saved_folder_with_anything_but_files_and_folders_is_refused(plant, tok, tmp_path):
    import socket
    path = saved_tokenizer(tok, tmp_path)
    assert isinstance(load_within(tmp_path).get("value", {}).get("x"), PreTrainedTokenizerBase)  # as saved: fine
    if plant == "fifo":
        (path / "tokenizer.json").unlink()
        os.mkfifo(path / "tokenizer.json")  # the loader would wait forever for a writer
    elif plant == "link-to-passwd":
        (path / "tokenizer.json").unlink()
        os.symlink("/etc/passwd", path / "tokenizer.json")
    elif plant == "link-in-subfolder":
        (path / "deeper").mkdir()
        os.symlink("/etc/passwd", path / "deeper" / "vocab.json")
    elif plant == "link-to-folder":
        os.symlink("/etc", path / "etc")
    else:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path / "sock"))
        s.close()
    outcome = load_within(tmp_path)
    assert isinstance(outcome.get("error"), AnswerError), outcome
    assert "not a regular file or folder" in str(outcome["error"])


def test_a_saved_folder_that_is_a_link_is_refused(tok, tmp_path):
    path = saved_tokenizer(tok, tmp_path)
    real = tmp_path / "elsewhere"
    path.rename(real)
    os.symlink(real, path)
    with pytest.raises(AnswerError, match="missing or outside"):
        load("q1", tmp_path)


def test_a_saved_folder_too_large_or_with_too_many_files_is_refused(tok, tmp_path, monkeypatch):
    import helpers.answers
    path = saved_tokenizer(tok, tmp_path)
    size = sum(f.stat().st_size for f in path.iterdir())
    monkeypatch.setattr(helpers.answers, "MAX_FOLDER_BYTES", size - 1)
    with pytest.raises(AnswerError, match="larger than"):
        load("q1", tmp_path)
    monkeypatch.setattr(helpers.answers, "MAX_FOLDER_BYTES", size)
    assert isinstance(load("q1", tmp_path)["x"], PreTrainedTokenizerBase)
    for i in range(3):
        (path / f"extra{i}").mkdir()
    monkeypatch.setattr(helpers.answers, "MAX_FOLDER_ENTRIES", len(list(path.iterdir())) - 1)
    with pytest.raises(AnswerError, match="more than"):
        load("q1", tmp_path)


def test_an_answer_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "q1.answer")
    outcome = load_within(tmp_path, seconds=10)
    assert isinstance(outcome.get("error"), AnswerError) and "not a regular file" in str(outcome["error"])


# --------------------------------------------------------------------------- random records

# Field values: the right one for some field of some record, or any literal at all.
literals = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | st.binary(max_size=3)
    | st.sampled_from(["cpu", "meta", "cuda:0", "left", "bfloat16", "int64", "nan", "rows", "ids", "adapter",
                       "tokenizer", "../tokenizer", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4) | st.integers() | st.none(), inner, max_size=3),
    max_leaves=6)
GOOD_FIELD_VALUES = sorted({repr(v) for r in RECORDS.values() for k, v in r.items() if k != "__kind__"})


@st.composite
def records(draw):
    """A record of a random kind: each field kept, dropped, or replaced (by another field's value or junk)."""
    kind = draw(st.sampled_from(sorted(RECORDS)))
    record = {"__kind__": kind}
    for name, good in RECORDS[kind].items():
        if name == "__kind__":
            continue
        choice = draw(st.sampled_from(["keep", "keep", "junk", "other", "drop"]))
        if choice == "keep":
            record[name] = good
        elif choice == "junk":
            record[name] = draw(literals)
        elif choice == "other":
            record[name] = ast.literal_eval(draw(st.sampled_from(GOOD_FIELD_VALUES)))
    if draw(st.integers(0, 9)) == 0:
        record[draw(st.text(max_size=4))] = draw(literals)
    return kind, record


@settings(max_examples=4 * settings.default.max_examples,  # cheap: 4x the profile's count
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=records())
def test_random_records_load_well_typed_or_are_refused(drawn, forged_folder):
    kind, record = drawn
    try:
        text = repr({"x": record})
    except RecursionError:
        return
    try:
        value = load_forged(forged_folder, text)["x"]
    except AnswerError:
        return
    assert isinstance(value, LOADS_AS[kind]), (kind, value)
    assert_well_typed(value)
