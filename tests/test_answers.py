"""Answers as plain data (helpers/answers.py): what each kind of value loads back as, and what is refused."""

import math
import os

import pytest
import torch

from helpers.answers import (PLACEHOLDER, AnswerError, ClassRef, ConfigRef, ExceptionRef, ModelFacts, Opaque,
                             load, save)
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
    (tmp_path / "q1.answer").write_text(repr({"x": {"__kind__": "tokenizer", "folder": "../../etc"}}))
    with pytest.raises(AnswerError, match="not a plain name"):
        load("q1", tmp_path)
    (tmp_path / "q1.answer").write_text(repr({"x": {"__kind__": "model"}}))
    with pytest.raises(AnswerError, match="malformed"):
        load("q1", tmp_path)
