"""Pytest settings shared by the unit tests and the notebook runs (nbval).

The environment is set here, at import, so that transformers (imported later)
and every notebook kernel (a child process) see it:

* HF_HUB_OFFLINE=1 - never wait on the Hub (set later, a lookup retries ~48 s);
* HF_HUB_DISABLE_PROGRESS_BARS=1 - no "Loading weights" bars in compared outputs.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def course_model_path():
    from helpers import resolve_model
    return resolve_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_model_path():
    from helpers import resolve_model
    return resolve_model("tiny-random-gpt2")
