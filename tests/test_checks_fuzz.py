"""Whatever a learner types into a check, the check answers; it never crashes.

A check must reject a wrong *kind* of answer with `Incorrect` (a message saying what to fix);
any other exception is `check_failed` (a bug in the check), which these tests do not accept.

Hypothesis throws random values (and some nasty objects: None, a model on the meta device,
an object whose every attribute raises) at every question of every lesson.
"""

import importlib
import pkgutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import helpers.checks
from helpers.checking import CORRECT, INCORRECT, NOT_ATTEMPTED, SKIPPED

QUESTIONS = [
    q
    for info in pkgutil.iter_modules(helpers.checks.__path__)
    if info.name.startswith("lesson")
    for q in importlib.import_module(f"helpers.checks.{info.name}").QUESTIONS
]


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


@pytest.fixture(scope="module")
def meta_model(course_model_path):
    from transformers import AutoConfig, AutoModelForCausalLM
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(course_model_path))


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.binary(max_size=20), st.lists(st.integers(), max_size=5),
    st.lists(st.lists(st.integers(min_value=-5, max_value=60000), max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from([torch.float32, torch.bfloat16, "bfloat16", torch.zeros(2, 3), torch.tensor([]),
                     torch.tensor(float("nan")), object(), Hostile(), type, int, [[]]]),
)


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: f"{q.notebook[:2]}-{q.name}")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_answers_never_crash_a_check(q, data, meta_model):
    answers = {var: data.draw(st.one_of(values, st.just(meta_model)), label=var) for var in q.answers}
    result = q.evaluate(answers)
    assert result.status in {CORRECT, INCORRECT, NOT_ATTEMPTED, SKIPPED}, f"{result.status}: {result.message}"
    assert isinstance(result.message, str)
    if result.status == INCORRECT:
        assert result.message, "an incorrect answer must say what to fix"
