"""Pytest settings shared by the unit tests and the notebook runs (nbval).

The environment is set here, at import, so that transformers (imported later)
and every notebook kernel (a child process) see it:

* HF_HUB_OFFLINE=1 - never wait on the Hub (set later, a lookup retries ~48 s);
* HF_HUB_DISABLE_PROGRESS_BARS=1 - no "Loading weights" bars in compared outputs;
* COURSE_PROGRESS_FILE="" - the ``qN.check()`` calls of the tests record no progress
  (helpers/progress.py) in the tester's home.

COURSE_BREAK_REFERENCES=1 makes every check's reference model and tokenizer raise
(tests/test_check_tests_notice_a_broken_check.py runs the lesson check tests that way:
they must fail, not pass).

Hypothesis (tests/test_checks_fuzz.py, tests/test_answers.py) runs under a profile:

* ``ci`` (the default: ``make test``, ``make test-quick``, CI) - derandomized, so every run draws the
  same examples and a red test is red again on the next run; no example database; a failure prints
  the blob that reproduces it (``@reproduce_failure``);
* ``fuzz`` (``make fuzz``, or ``HYPOTHESIS_PROFILE=fuzz``) - random, 500 examples per test, and the
  failing examples kept in ``.hypothesis/`` to be tried first next time. Whatever it finds goes into
  the explicit regression lists (``HOSTILE`` in tests/test_checks_fuzz.py), so that the normal suite
  keeps it fixed.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["COURSE_PROGRESS_FILE"] = ""

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None,
                          max_examples=30, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", derandomize=False, print_blob=True, deadline=None, max_examples=500,
                          database=DirectoryBasedExampleDatabase(
                              os.path.join(os.path.dirname(os.path.abspath(__file__)), ".hypothesis", "examples")))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _break_references() -> None:
    """Replace ``reference_model``/``reference_tokenizer`` in every check module by a function that raises."""
    import importlib
    import pkgutil

    import helpers.checks

    def broken(*args, **kwargs):
        raise RuntimeError("reference broken on purpose (COURSE_BREAK_REFERENCES=1)")

    for info in pkgutil.iter_modules(helpers.checks.__path__):
        module = importlib.import_module(f"helpers.checks.{info.name}")
        for name in ("reference_model", "reference_tokenizer"):
            if hasattr(module, name):
                setattr(module, name, broken)


if os.environ.get("COURSE_BREAK_REFERENCES") == "1":
    _break_references()


@pytest.fixture(scope="session", autouse=True)
def course_models_untouched():
    """No test may change the course's model files, not even their inode (a new hard link to one
    does): the grader's tamper check (grading/integrity.py) watches exactly that, so a grader test
    running beside such a test would stop its batch, and which tests run side by side is chance.
    Tests that need a changed or linked model work on a private copy (tests/test_portability.py)."""
    from helpers.models import models_dir

    def inodes():
        root = models_dir()
        return {p: p.stat().st_ctime_ns for p in root.rglob("*") if p.is_file()} if root.is_dir() else {}

    before = inodes()
    yield
    after = inodes()
    changed = sorted(str(p) for p, ctime in before.items() if after.get(p, ctime) != ctime)
    assert not changed, f"tests changed the course's model files (their inode): {changed[:5]}"


@pytest.fixture(scope="session")
def course_model_path():
    from helpers import resolve_model
    return resolve_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_model_path():
    from helpers import resolve_model
    return resolve_model("tiny-random-gpt2")


# Models and tokenizers the check tests share: module scope, so that a test file that changes one
# (moves it, casts it) never affects another file.

@pytest.fixture(scope="module")
def tok(course_model_path):
    """The course tokenizer."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(course_model_path)


@pytest.fixture(scope="module")
def model(course_model_path):
    """The course model in float32 on the CPU (what the lessons call `model`)."""
    import torch
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32)


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    """The tiny random GPT-2: a model that is not the course model."""
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(tiny_model_path)


@pytest.fixture(scope="module")
def tiny_pair(tiny_model_path):
    """The tiny random GPT-2 and its tokenizer, as ``(model, tokenizer)``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    return AutoModelForCausalLM.from_pretrained(tiny_model_path), AutoTokenizer.from_pretrained(tiny_model_path)
