"""Whatever a learner types into a check, the check answers; it never crashes.

A check must reject a wrong *kind* of answer with `Incorrect` (a message saying what to fix);
any other exception is `check_failed` (a bug in the check), which these tests do not accept: the
grader scores `check_failed` 0 *toward the maximum*, so a check that can be crashed is a way to
game a grade.

* ``HOSTILE`` (tests/support.py) - every value a fuzzer ever crashed a check with, and the kinds it
  is likely to: each question of each lesson gets each of them, in each of its variables (the others
  right where that is cheap to build), on every run of the suite;
* ``FORGED`` - records a learner can forge in the kernel (helpers/answers.py refuses malformed ones;
  these are well-formed but absurd: a course-sized model with no footprint, NaN weights...);
* Hypothesis throws random values at every question (derandomized under the suite's "ci" profile,
  random and 500 per question under ``make fuzz``; see conftest.py).
"""

import ast
import importlib
import pkgutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import helpers.checks
from helpers.answers import save
from helpers.checking import CORRECT
from support import ANSWERED, HOSTILE, META_MODEL, Hostile, assert_verdict

QUESTIONS = [
    q
    for info in pkgutil.iter_modules(helpers.checks.__path__)
    if info.name.startswith("lesson")
    for q in importlib.import_module(f"helpers.checks.{info.name}").QUESTIONS
]


def build_meta_model(path):
    """The course model's architecture on the meta device: a model with no weights."""
    from transformers import AutoConfig, AutoModelForCausalLM
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))


@pytest.fixture(scope="module")
def meta_model(course_model_path):
    return build_meta_model(course_model_path)





def question_id(q) -> str:
    return f"{q.notebook[:2]}-{q.name}"


def assert_answered(result):
    """A verdict, never check_failed, and not "could not be graded" either (support.assert_verdict)."""
    assert_verdict(result, allowed=ANSWERED)


def hostile(value, meta_model):
    return meta_model if isinstance(value, str) and value == META_MODEL else value


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("q", QUESTIONS, ids=question_id)
def test_hostile_values_get_a_verdict(q, value, meta_model):
    assert_answered(q.evaluate({var: hostile(value, meta_model) for var in q.answers}))


# Right answers for the questions with several variables, so that a hostile value in a *later* variable
# is reached too (a check looks at its variables in turn and stops at the first wrong one).
def _right_01_q2(course_model_path):
    from transformers import GPT2LMHeadModel
    return {"dispatched_class": GPT2LMHeadModel, "tiny_model_type": "gpt2"}


def _right_02_q4(course_model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.checks.lesson02 import Q4_NEW, Q4_PROMPTS
    left = AutoTokenizer.from_pretrained(course_model_path, padding_side="left")
    batch = left(list(Q4_PROMPTS), return_tensors="pt", padding=True)
    model = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32)
    return {"batch_inputs": batch, "batch_output": model.generate(**batch, max_new_tokens=Q4_NEW, do_sample=False)}


def _right_03_q1(course_model_path):
    from transformers import AutoModelForCausalLM
    fp32 = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32)
    bf16 = AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.bfloat16)
    return {"bf16_model": bf16, "bf16_memory_ratio": bf16.get_memory_footprint() / fp32.get_memory_footprint()}


RIGHT = {"01-q2": _right_01_q2, "02-q4": _right_02_q4, "03-q1": _right_03_q1}
PARTIAL = [(q, var) for q in QUESTIONS if question_id(q) in RIGHT for var in q.answers]


@pytest.fixture(scope="module")
def right_answers(course_model_path):
    """The right answers of the questions in RIGHT, built once and saved as data (q.extract)."""
    return {tag: build(course_model_path) for tag, build in RIGHT.items()}


def test_right_answers_for_the_partial_cases_are_right(right_answers):
    for q in QUESTIONS:
        if question_id(q) in RIGHT:
            assert q.evaluate(right_answers[question_id(q)]).status == CORRECT, question_id(q)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("q, var", PARTIAL, ids=[f"{question_id(q)}-{var}" for q, var in PARTIAL])
def test_a_hostile_value_next_to_right_ones_gets_a_verdict(q, var, value, right_answers, meta_model):
    answers = dict(right_answers[question_id(q)], **{var: hostile(value, meta_model)})
    assert_answered(q.evaluate(answers))


# --------------------------------------------------------------------------- forged, well-formed records

@pytest.fixture(scope="module")
def course_record(course_model_path, tmp_path_factory):
    """The course model's record as save() writes it (float32, CPU), its tensor renamed "forged"."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    folder = tmp_path_factory.mktemp("course-record")
    save("q1", {"m": AutoModelForCausalLM.from_pretrained(course_model_path, dtype=torch.float32)}, folder)
    record = ast.literal_eval((folder / "q1.answer").read_text())["m"]
    rows = load_file(folder / "q1.safetensors")[record["embedding_rows"]["key"]]
    return dict(record, embedding_rows={"__kind__": "tensor", "key": "forged"}), rows


CLASS = {"__kind__": "class", "module": "x", "name": "X", "mro": []}

# Changes to the course model's record (and the embedding rows saved with it, if not its own): each
# gives a record that load() accepts but that no from_pretrained could have produced.
FORGED = [
    pytest.param({"memory_footprint": 0}, None, id="no-footprint"),
    pytest.param({"dtypes": ["bfloat16"], "memory_footprint": 0}, None, id="bf16-no-footprint"),
    pytest.param({"dtypes": ["bfloat16"], "memory_footprint": 10**30}, None, id="bf16-huge-footprint"),
    pytest.param({"num_parameters": 0, "memory_footprint": 0}, None, id="no-parameters"),
    pytest.param({"dtypes": []}, None, id="no-dtypes"),
    pytest.param({"dtypes": ["float64", "float8_e4m3fn"]}, None, id="odd-dtypes"),
    pytest.param({"device": "meta", "on_meta": True}, None, id="on-meta"),
    pytest.param({"device": "cuda:7"}, None, id="cuda7"),
    pytest.param({"dtypes": ["bfloat16"], "device": "cpu"}, None, id="bf16-cpu"),
    pytest.param({"hf_device_map": {"": "disk", "model.layers.0": 9, "lm_head": "nowhere"}}, None, id="odd-map"),
    pytest.param({"hf_device_map": {}}, None, id="empty-map"),
    pytest.param({"config": {}, "model_type": None}, None, id="no-config"),
    pytest.param({"quantization_config": {"load_in_4bit": "yes", "bnb_4bit_compute_dtype": 5}, "is_quantized": True,
                  "has_4bit_layers": True}, None, id="odd-quantization"),
    pytest.param({"attn_implementation": None}, None, id="no-attention"),
    pytest.param({"attn_implementation": "eager", "embedding_rows": None}, None, id="eager-no-embedding"),
    pytest.param({"num_embeddings": 0, "embedding_rows": None}, None, id="no-embedding"),
    pytest.param({}, torch.zeros(0, 576), id="zero-rows"),
    pytest.param({}, torch.full((64, 576), float("nan")), id="nan-rows"),
    pytest.param({}, torch.ones(3, 2), id="narrow-rows"),
    pytest.param({"parameter_names": []}, None, id="no-parameter-names"),
]


def write_forged(folder, q, answers: dict, tensors: dict) -> None:
    """Write the answers of ``q`` as a learner's kernel could: ``answers`` are raw records (literals)."""
    from safetensors.torch import save_file
    (folder / f"{q.name}.answer").write_text(repr(answers))
    if tensors:
        save_file(tensors, str(folder / f"{q.name}.safetensors"))


@pytest.mark.parametrize("change, rows", FORGED)
@pytest.mark.parametrize("q", QUESTIONS, ids=question_id)
def test_forged_well_formed_records_get_a_verdict(q, change, rows, course_record, tmp_path):
    record, own_rows = course_record
    write_forged(tmp_path, q, {var: dict(record, **change) for var in q.answers},
                 {"forged": own_rows if rows is None else rows})
    assert_answered(q.verify(tmp_path))


@pytest.mark.parametrize("change, rows", FORGED)
@pytest.mark.parametrize("q, var", PARTIAL, ids=[f"{question_id(q)}-{var}" for q, var in PARTIAL])
def test_a_forged_record_next_to_right_answers_gets_a_verdict(q, var, change, rows, course_record, right_answers,
                                                               tmp_path):
    from safetensors.torch import load_file
    q.extract(right_answers[question_id(q)], tmp_path)
    answers = ast.literal_eval((tmp_path / f"{q.name}.answer").read_text())
    saved = tmp_path / f"{q.name}.safetensors"
    tensors = load_file(saved) if saved.exists() else {}
    record, own_rows = course_record
    write_forged(tmp_path, q, dict(answers, **{var: dict(record, **change)}),
                 dict(tensors, forged=own_rows if rows is None else rows))
    assert_answered(q.verify(tmp_path))


# Other records, as the literal text of one answer (a learner can write any text there).
NAN = {"__kind__": "float", "text": "nan"}
FORGED_OTHERS = [
    pytest.param(repr(CLASS), id="class-no-mro"),
    pytest.param(repr({"__kind__": "exception", "type": CLASS, "message": ""}), id="exception"),
    pytest.param(repr({"__kind__": "config", "type": dict(CLASS, name="BitsAndBytesConfig"),
                       "values": {"load_in_4bit": [1], "bnb_4bit_compute_dtype": {"a": None}, "": NAN}}), id="config"),
    pytest.param(repr({"__kind__": "config", "type": dict(CLASS, name="LoraConfig"),
                       "values": {"target_modules": {1: 2}, "r": -1, "lora_alpha": NAN}}), id="lora-config"),
    pytest.param(repr({"__kind__": "opaque", "type": CLASS, "text": ""}), id="opaque"),
    pytest.param(repr({"__kind__": "mapping", "type": CLASS, "items": {None: 1, 2.5: [], "input_ids": 7}}),
                 id="mapping"),
    pytest.param(repr(NAN), id="nan"),
    pytest.param(repr({"__kind__": "set", "items": [None, 1, "a", (1, 2)]}), id="set"),
    pytest.param(repr(2 ** 200), id="int-2**200"),
    pytest.param("-" + "9" * 400, id="int--10**400"),
    pytest.param("1e999", id="literal-inf"),
    pytest.param("[1e999, -1e999]", id="literal-infs"),
    pytest.param("{'input_ids': [[1e999]], 'attention_mask': [[True]]}", id="literal-odd-inputs"),
]


@pytest.mark.parametrize("text", FORGED_OTHERS)
@pytest.mark.parametrize("q", QUESTIONS, ids=question_id)
def test_forged_values_get_a_verdict(q, text, tmp_path):
    (tmp_path / f"{q.name}.answer").write_text("{" + ", ".join(f"{var!r}: {text}" for var in q.answers) + "}")
    assert_answered(q.verify(tmp_path))


# --------------------------------------------------------------------------- random values

def _tensor(values_and_dtype):
    values, dtype, two_d = values_and_dtype
    t = torch.tensor(values, dtype=torch.int64).to(dtype)
    return t.reshape(1, -1) if two_d else t


tensors = st.tuples(st.lists(st.integers(-2**40, 2**40), max_size=6),
                    st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.bool, torch.float32, torch.float16,
                                     torch.bfloat16, torch.complex64, *(getattr(torch, n) for n in
                                     ("uint16", "uint32", "uint64") if hasattr(torch, n))]),
                    st.booleans()).map(_tensor)


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.binary(max_size=20), st.lists(st.integers(), max_size=5),
    st.lists(st.lists(st.integers(min_value=-5, max_value=60000), max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from([torch.float32, torch.bfloat16, "bfloat16", torch.zeros(2, 3), torch.tensor([]),
                     torch.tensor(float("nan")), object(), Hostile(), type, int, [[]]]),
    st.sampled_from([p.values[0] for p in HOSTILE]), tensors,
    st.lists(st.integers(min_value=-2**64, max_value=2**64), max_size=4),
    st.dictionaries(st.sampled_from(["input_ids", "attention_mask", "", "cpu", "0"]),
                    st.one_of(tensors, st.integers(),
                              st.lists(st.lists(st.integers(-1, 2**33), max_size=3), max_size=2)),
                    max_size=3),
)


@pytest.mark.parametrize("q", QUESTIONS, ids=question_id)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # the rest: the profile
@given(data=st.data())
def test_random_answers_never_crash_a_check(q, data, meta_model):
    answers = {var: data.draw(st.one_of(values, st.just(meta_model)), label=var) for var in q.answers}
    assert_answered(q.evaluate(answers))
