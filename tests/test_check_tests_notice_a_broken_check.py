"""The lesson check tests fail when the checks break: a crash is never taken for a rejection.

The lesson check tests are run again in a subprocess with COURSE_BREAK_REFERENCES=1 (see
conftest.py): every check's reference model and tokenizer then raise. A check that uses them
reports `check_failed`, so every test asserting `correct` or `incorrect` for it must fail.
The only tests allowed to pass are listed below, each with the reason it never reaches a reference.
"""

import os
import re
import subprocess
import sys

import pytest

from helpers.models import repo_root

pytestmark = pytest.mark.slow

STILL_PASS = {
    # the check reads a config or a dtype, not the reference model
    "test_lesson01_checks.py::test_q2",
    "test_lesson03_checks.py::test_q3_right_answers",
    "test_lesson03_checks.py::test_q3_wrong_answers",
    "test_lesson06_checks.py::test_q1_right_answers",
    "test_lesson06_checks.py::test_q1_wrong_answers[config0]",
    "test_lesson06_checks.py::test_q1_wrong_answers[config1]",
    "test_lesson06_checks.py::test_q1_wrong_answers[config2]",
    "test_lesson06_checks.py::test_q1_wrong_answers[config3]",
    "test_lesson06_checks.py::test_q1_a_dict_or_the_defaults_are_rejected",
    # lesson 04 plans 7B/70B models on the meta device: its references are built from configs
    "test_lesson04_checks.py::test_q1",
    "test_lesson04_checks.py::test_q3",
    "test_lesson04_checks.py::test_q4",
    "test_lesson04_checks.py::test_q5",
    # rejected by the answer's kind (not a model, not a list of targets) before any reference is needed
    "test_lesson05_checks.py::test_q1_wrong_values[None]",
    "test_lesson05_checks.py::test_q1_wrong_values[smollm2]",
    "test_lesson05_checks.py::test_q1_wrong_values[0]",
    "test_lesson06_checks.py::test_q3_wrong_answers[all-linear]",
    # asserts that checking does not change the model's train/eval flags, whatever the verdict
    "test_lesson06_checks.py::test_checking_q4_leaves_the_model_as_it_was",
}


def test_breaking_the_reference_model_makes_the_lesson_check_tests_fail():
    tests = sorted(str(p) for p in (repo_root() / "tests").glob("test_lesson0*_checks.py"))
    env = dict(os.environ, COURSE_BREAK_REFERENCES="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", *tests, "-q", "-rA", "--tb=no", "-p", "no:cacheprovider",
                           "-p", "no:xdist"],
                          capture_output=True, text=True, env=env, cwd=repo_root(), timeout=900)
    assert proc.returncode == 1, proc.stdout[-2000:]
    passed = {m.split("tests/", 1)[-1] for m in re.findall(r"^PASSED (\S+)", proc.stdout, re.M)}
    missing = {m for m in passed if m.endswith("_missing")}  # "not attempted" never reaches the check
    unexpected = passed - missing - STILL_PASS
    assert not unexpected, f"these tests pass even though every check's reference raises: {sorted(unexpected)}"
    failed = re.search(r"(\d+) failed", proc.stdout)
    assert failed and int(failed.group(1)) >= 20, proc.stdout[-2000:]
