"""Hostile answers for the lesson check tests: odd values, and saved records edited as a forger would.

* ``HOSTILE`` - values of the wrong kind or out of range (issue 20) that every question must answer
  with a verdict: ``correct``, ``incorrect`` (with a message), ``not_attempted``, ``skipped`` or
  ``error``, never ``check_failed``;
* ``assert_verdict(result)`` - that contract;
* ``forged(question, answers, edit)`` - save ``answers`` as the learner's kernel does, let ``edit``
  change the saved record (and the folders saved with it), then judge what is left, as the grader does:
  the records come from the learner's kernel, so they can say anything;
* ``REFERENCE_FREE`` - marks tests whose answers are refused by their kind before the check uses any
  reference (the hostile values, mostly): they are skipped when
  tests/test_check_tests_notice_a_broken_check.py runs the check tests with broken references, where
  passing proves nothing.
"""

from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path

import pytest
import torch

from helpers.answers import save
from helpers.checking import CORRECT, ERROR, INCORRECT, NOT_ATTEMPTED, SKIPPED

VERDICTS = {CORRECT, INCORRECT, NOT_ATTEMPTED, SKIPPED, ERROR}

HOSTILE = [
    pytest.param([4294967296], id="list-2**32"),
    pytest.param([-1], id="list-negative"),
    pytest.param(7, id="int"),
    pytest.param(torch.tensor([1 + 2j]), id="complex-tensor"),
    pytest.param(torch.tensor([1, 2], dtype=torch.uint32), id="uint32-tensor"),
    pytest.param(torch.tensor([True, False]), id="bool-tensor"),
    pytest.param(torch.tensor([float("inf"), float("nan")]), id="inf-nan-tensor"),
    pytest.param(torch.tensor(3.0), id="0d-tensor"),
    pytest.param("3.5", id="str-number"),
    pytest.param("inf", id="str-inf"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(-0.0, id="-0.0"),
    pytest.param({1: 2, "a": 3}, id="dict-mixed-keys"),
    pytest.param({"a": torch.zeros(2)}, id="dict-of-tensor"),
    pytest.param([{"x": 1}], id="list-of-dict"),
    pytest.param(b"x", id="bytes"),
    pytest.param({1, 2}, id="set"),
    pytest.param((torch.zeros(1),), id="tuple-of-tensor"),
    pytest.param(torch.complex64, id="dtype-complex64"),
    pytest.param(torch.uint8, id="dtype-uint8"),
    pytest.param(torch.device("meta"), id="device-meta"),
    pytest.param(int, id="class-int"),
    pytest.param(Exception, id="class-Exception"),
    pytest.param(ValueError("x"), id="exception"),
    pytest.param(None, id="None"),
]

REFERENCE_FREE = pytest.mark.skipif(
    os.environ.get("COURSE_BREAK_REFERENCES") == "1",
    reason="refused by its kind before any reference is used: passing with broken references proves nothing")


def assert_verdict(result) -> None:
    """The contract of every check: a verdict, never check_failed; an incorrect says what to fix."""
    assert result.status in VERDICTS, f"{result.status}: {result.message}"
    assert isinstance(result.message, str)
    if result.status == INCORRECT:
        assert result.message, "an incorrect answer must say what to fix"


def forged(question, answers: dict, edit):
    """Judge ``answers`` after ``edit(record, folder)`` changed what :func:`helpers.answers.save` wrote.

    ``record`` is the saved literal ({variable: record}), changed in place; ``folder`` is where the
    question's saved folders (adapters, tokenizers) are, named by the records' ``folder`` fields.
    """
    with tempfile.TemporaryDirectory(prefix="course-forged-") as root:
        save(question.name, answers, root)
        path = Path(root) / f"{question.name}.answer"
        record = ast.literal_eval(path.read_text(encoding="utf-8"))
        edit(record, Path(root) / question.name)
        path.write_text(repr(record), encoding="utf-8")
        return question.verify(root)
