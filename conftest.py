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
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["COURSE_PROGRESS_FILE"] = ""

import pytest  # noqa: E402


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
