"""What the tests of the lesson checks share: the verdict contract, hostile values, forged records.

* ``assert_verdict(result)`` - the contract of every check: a verdict (``correct``, ``incorrect`` with a
  message, ``not_attempted``, ``skipped``, ``error``), never ``check_failed``; ``allowed=ANSWERED``
  where "could not be graded" is not a fair outcome either;
* ``status(question, **answers)`` - the status a question gives these answers (its ``evaluate``);
* ``HOSTILE`` - every value a fuzzer ever crashed a check with, and the kinds it is likely to
  (tests/test_checks_fuzz.py gives each to every variable of every question); ``NESTED`` - a sample
  of them that the lesson tests put *inside* an answer (an element of a list, a value of a dict);
  add a value here whenever ``make fuzz`` finds a new one, so the normal suite keeps it fixed;
* ``forged(question, answers, edit)`` - save ``answers`` as the learner's kernel does, let ``edit``
  change the saved record (and the folders saved with it), then judge what is left, as the grader
  does: the records come from the learner's kernel, so they can say anything;
* ``REFERENCE_FREE`` - marks the check tests that use no reference model: answers refused by their
  kind before any reference is needed (the hostile values, mostly), and checks that read a config or
  plan on the meta device. They are skipped when tests/test_check_tests_notice_a_broken_check.py runs
  the check tests with broken references, where passing proves nothing; every other check test must
  fail there.
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

ANSWERED = (CORRECT, INCORRECT, NOT_ATTEMPTED, SKIPPED)
VERDICTS = (*ANSWERED, ERROR)

REFERENCE_FREE = pytest.mark.skipif(
    os.environ.get("COURSE_BREAK_REFERENCES") == "1",
    reason="uses no reference model: passing with broken references proves nothing")


def assert_verdict(result, allowed=VERDICTS) -> None:
    """The contract of every check: a verdict, never check_failed; an incorrect says what to fix."""
    assert result.status in allowed, f"{result.status}: {result.message}"
    assert isinstance(result.message, str)
    if result.status == INCORRECT:
        assert result.message, "an incorrect answer must say what to fix"


def status(question, **answers) -> str:
    """The status ``question`` gives ``answers`` ({variable: value}, as the notebook has them)."""
    return question.evaluate(answers).status


class Hostile:
    """Raises on every attribute access, call, comparison and conversion."""

    def __getattr__(self, name):
        raise RuntimeError(f"no {name} for you")

    def __eq__(self, other):
        raise RuntimeError("no comparing")

    __hash__ = None

    def __len__(self):
        raise RuntimeError("no length")

    def __iter__(self):
        raise RuntimeError("no iterating")


META_MODEL = "<the meta-device model>"  # stands for the fixture in HOSTILE


def _uint_tensors():
    """Unsigned integer tensors of every width this torch has (uint16/32/64 came in 2.3)."""
    return [pytest.param(torch.tensor([1, 2], dtype=getattr(torch, name)), id=f"{name}-tensor")
            for name in ("uint8", "uint16", "uint32", "uint64") if hasattr(torch, name)]


# Every value a fuzzer ever crashed a check with, plus the kinds it is likely to: each question of each
# lesson gets each of them (in every one of its variables) in the normal suite, so a crash found once
# stays fixed. Add a value here whenever `make fuzz` finds a new one.
HOSTILE = [
    pytest.param([4294967296], id="id-2**32"),          # 02 q2: OverflowError in the tokenizer's decode
    pytest.param([-1], id="id-negative"),
    pytest.param([2**63], id="id-2**63"),
    pytest.param([[2**70, 1]], id="row-2**70"),
    pytest.param([10**6], id="id-past-vocab"),
    pytest.param(7, id="int-for-list"),
    pytest.param(-1, id="int-negative"),
    pytest.param(2**63, id="int-2**63"),
    pytest.param(10**30, id="int-huge"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="None"),
    pytest.param([], id="empty-list"),
    pytest.param([[]], id="list-of-empty"),
    pytest.param([1.5, 2.0], id="float-ids"),
    pytest.param([True, False], id="bool-ids"),
    pytest.param([[1, 2], [3]], id="ragged-rows"),
    pytest.param([[[1]]], id="3-deep-ids"),
    pytest.param([[1] * 1000] * 8, id="large-nested-list"),
    pytest.param([[[[[[[[1]]]]]]]], id="deep-nested-list"),
    pytest.param(torch.tensor([1 + 2j]), id="complex-tensor"),
    *_uint_tensors(),
    pytest.param(torch.tensor([True, False]), id="bool-tensor"),
    pytest.param(torch.tensor([[True, False, True]]), id="bool-tensor-2d"),
    pytest.param(torch.tensor([float("inf"), float("nan"), 1.0]), id="inf-nan-tensor"),
    pytest.param(torch.tensor([[float("nan")]]), id="nan-tensor-2d"),
    pytest.param(torch.tensor(5), id="0d-int-tensor"),
    pytest.param(torch.tensor(0.5), id="0d-float-tensor"),
    pytest.param(torch.tensor(float("inf")), id="0d-inf-tensor"),
    pytest.param(torch.tensor([[-1, 5]]), id="negative-id-tensor"),
    pytest.param(torch.tensor([[2**62]]), id="huge-id-tensor"),
    pytest.param(torch.zeros(3, 0, dtype=torch.long), id="empty-2d-tensor"),
    pytest.param(torch.zeros(2, 2, 2, dtype=torch.long), id="3d-tensor"),
    pytest.param(torch.tensor([1.0, 2.0], dtype=torch.float16), id="half-tensor"),
    pytest.param(torch.ones(2, dtype=torch.float8_e4m3fn), id="float8-tensor"),
    pytest.param("3.5", id="str-number"),
    pytest.param("inf", id="str-inf"),
    pytest.param("", id="empty-str"),
    pytest.param("\x00<|im_start|>", id="str-nul-special"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(float("-inf"), id="-inf"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(-0.0, id="-0.0"),
    pytest.param(1e308, id="1e308"),
    pytest.param(5e-324, id="denormal"),
    pytest.param({1: 2, "a": 3}, id="dict-mixed-keys"),
    pytest.param({None: 1, 2.5: "x", True: []}, id="dict-odd-keys"),
    pytest.param({"input_ids": torch.tensor([[1 + 2j]]), "attention_mask": torch.tensor([2.5])}, id="dict-odd-tensors"),
    pytest.param({"input_ids": [[1, 2]], "attention_mask": [[1]]}, id="dict-mismatched-mask"),
    pytest.param({"input_ids": [[4294967296]], "attention_mask": [[7]]}, id="dict-overflowing-ids"),
    pytest.param({"input_ids": "text"}, id="dict-str-ids"),
    pytest.param({"0": "24GiB", "cpu": -1, "disk": float("inf")}, id="dict-memory-odd"),
    pytest.param({"model.layers.0": "meta", "": 10**30}, id="dict-device-map-odd"),
    pytest.param({"a": {"b": {"c": {}}}}, id="dict-nested"),
    pytest.param({"a": torch.zeros(2)}, id="dict-of-tensor"),
    pytest.param({"__kind__": "model"}, id="dict-with-kind-key"),
    pytest.param([{"role": "user", "content": "hi"}], id="list-of-dicts"),
    pytest.param([{}, {1: 2}], id="list-of-odd-dicts"),
    pytest.param(b"\x00\xff", id="bytes"),
    pytest.param({1, 2}, id="set"),
    pytest.param(frozenset({"q_proj"}), id="frozenset"),
    pytest.param((torch.tensor([1]), torch.tensor([2.0])), id="tuple-of-tensors"),
    pytest.param([torch.tensor([1, 2]), torch.tensor([3, 4])], id="list-of-tensors"),
    pytest.param(torch.complex64, id="dtype-complex64"),
    pytest.param(torch.uint8, id="dtype-uint8"),
    pytest.param(torch.bool, id="dtype-bool"),
    pytest.param(torch.float8_e5m2, id="dtype-float8"),
    pytest.param(torch.device("meta"), id="device-meta"),
    pytest.param(torch.device("cuda", 7), id="device-cuda7"),
    pytest.param(int, id="class-int"),
    pytest.param(Exception, id="class-Exception"),
    pytest.param(ValueError("bad value"), id="exception-instance"),
    pytest.param(MemoryError(), id="exception-no-message"),
    pytest.param(object(), id="object"),
    pytest.param(Hostile(), id="hostile-object"),
    pytest.param(META_MODEL, id="meta-model"),
]


NESTED = [p for p in HOSTILE if p.id in {
    "id-2**32", "id-negative", "int-for-list", "complex-tensor", "uint32-tensor", "bool-tensor",
    "inf-nan-tensor", "0d-float-tensor", "str-number", "str-inf", "inf", "-0.0", "dict-mixed-keys",
    "dict-of-tensor", "list-of-odd-dicts", "bytes", "set", "tuple-of-tensors", "dtype-complex64",
    "dtype-uint8", "device-meta", "class-int", "class-Exception", "exception-instance", "None"}]


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
