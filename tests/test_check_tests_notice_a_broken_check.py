"""The lesson check tests fail when the checks break: a crash is never taken for a rejection.

The lesson check tests are run again in a subprocess with COURSE_BREAK_REFERENCES=1 (see
conftest.py): every check's reference model and tokenizer then raise. A check that uses them
reports `check_failed`, so every test asserting `correct` or `incorrect` for it must fail.
The tests that use no reference model carry the ``REFERENCE_FREE`` marker (tests/support.py) and are
skipped there; every other test of a check must fail.
"""

import os
import re
import subprocess
import sys

import pytest

from helpers.models import repo_root

pytestmark = pytest.mark.slow


def test_breaking_the_reference_model_makes_the_lesson_check_tests_fail():
    tests = sorted(str(p) for p in (repo_root() / "tests").glob("test_lesson0*_checks.py"))
    env = dict(os.environ, COURSE_BREAK_REFERENCES="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", *tests, "-q", "-rA", "--tb=no", "-p", "no:cacheprovider",
                           "-p", "no:xdist"],
                          capture_output=True, text=True, env=env, cwd=repo_root(), timeout=900)
    assert proc.returncode == 1, proc.stdout[-2000:]
    passed = {m.split("tests/", 1)[-1] for m in re.findall(r"^PASSED (\S+)", proc.stdout, re.M)}
    missing = {m for m in passed if m.endswith("_missing")}  # "not attempted" never reaches the check
    unexpected = passed - missing  # the tests that use no reference are marked REFERENCE_FREE: skipped here
    assert not unexpected, f"these tests pass even though every check's reference raises: {sorted(unexpected)}"
    failed = re.search(r"(\d+) failed", proc.stdout)
    assert failed and int(failed.group(1)) >= 20, proc.stdout[-2000:]
