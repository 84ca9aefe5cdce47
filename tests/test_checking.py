"""The question machinery: outcomes, rendering, hints, solutions, robustness."""

import torch

from helpers.checking import (CHECK_FAILED, CORRECT, INCORRECT, NOT_ATTEMPTED, SKIPPED, Question,
                              Result, ____, as_dtype, expect, is_placeholder, solution_source)
from helpers.checks import lesson01


def _positive(x):
    expect(isinstance(x, int) and x > 0, "x should be a positive integer")


Q = Question("a positive integer", ["x"], _positive, hints=["one", "two"], notebook="01_loading.ipynb", name="q9")


def test_three_outcomes():
    assert Q.evaluate({"x": 3}).status == CORRECT
    wrong = Q.evaluate({"x": -3})
    assert wrong.status == INCORRECT and wrong.message == "x should be a positive integer"
    assert Q.evaluate({}).status == NOT_ATTEMPTED
    assert Q.evaluate({"x": ____}).status == NOT_ATTEMPTED


def test_a_check_that_crashes_is_a_check_failure_not_a_rejection():
    def crashes(x):
        raise RuntimeError("boom")
    r = Question("t", ["x"], crashes, name="q").evaluate({"x": 1})
    assert r.status == CHECK_FAILED
    assert "RuntimeError: boom" in r.message and "nothing about your answer" in r.message
    assert str(r).startswith("q: Problem with the check (not your answer)")


def test_a_broken_reference_is_a_check_failure():
    def needs_reference(x):
        raise AttributeError("'LlamaForCausalLM' object has no attribute 'renamed_in_a_new_release'")
    r = Question("t", ["x"], needs_reference, name="q").evaluate({"x": 1})
    assert r.status == CHECK_FAILED and "AttributeError" in r.message


def test_gpu_question_is_skipped_with_a_reason_when_no_gpu():
    q = Question("needs a GPU", ["x"], _positive, requires="cuda", name="q")
    r = q.evaluate({"x": 1})
    if torch.cuda.is_available():
        assert r.status == CORRECT
    else:
        assert r.status == SKIPPED and "CUDA GPU" in r.message


def test_result_renders_plain_and_coloured():
    r = Result("q1", INCORRECT, "use <dtype=>")
    assert str(r) == "q1: Incorrect - use <dtype=>"
    html = r._repr_html_()
    assert "#b42318" in html and "&lt;dtype=&gt;" in html  # coloured and escaped


def test_check_reads_the_callers_globals(capsys):
    x = 5  # noqa: F841 - a local is not seen: only the notebook's globals count
    globals()["x"] = 7
    try:
        Q.check()
    finally:
        del globals()["x"]
    assert capsys.readouterr().out.strip() == "q9: Correct"


def test_hints_are_staged(capsys):
    Q.hint()
    assert "hint 1/2" in capsys.readouterr().out
    Q.hint(2)
    out = capsys.readouterr().out
    assert "hint 2/2" in out and "two" in out
    Q.hint(99)  # clamps to the last one
    assert "hint 2/2" in capsys.readouterr().out


def test_solution_is_read_from_the_solution_notebook(capsys):
    code = solution_source("01_loading.ipynb", "q1")
    assert "from_pretrained" in code and "BEGIN" not in code
    lesson01.q1.solution()
    assert "model_bf16 = " in capsys.readouterr().out


def test_placeholder_is_recognized_across_module_copies():
    class Placeholder:  # a fresh copy of the class, as after re-importing helpers
        _is_course_placeholder = True
    assert is_placeholder(Placeholder()) and is_placeholder(____)
    assert not is_placeholder(None) and not is_placeholder("____")


def test_as_dtype_accepts_both_spellings():
    assert as_dtype(torch.bfloat16) is torch.bfloat16
    assert as_dtype("bfloat16") is torch.bfloat16 and as_dtype("torch.float16") is torch.float16
    assert as_dtype("bf16") is None and as_dtype(3) is None and as_dtype("Tensor") is None
