"""Exercise questions that check themselves: ``q1.check()``, ``q1.hint()``, ``q1.solution()``.

A lesson's questions live in ``helpers/checks/lessonNN.py``. Each question names
the variables the learner must define (for example ``model_bf16``) and a check
function that receives their values. In the notebook::

    model_bf16 = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16)
    q1.check()      # reads `model_bf16` from the notebook and checks it

Outcomes (one table, :data:`OUTCOMES`, maps each to what a learner and the
grader's report show):

* ``correct``;
* ``incorrect`` - the check rejected the answer (it raised :class:`Incorrect`),
  with a message that says what to fix (never the expected value);
* ``not_attempted`` - a variable is missing or still the placeholder ``____``;
* ``skipped`` - the question needs hardware this machine lacks (a GPU);
* ``check_failed`` - the check itself raised something other than
  :class:`Incorrect` (a bug in the check, a library that changed): this says
  nothing about the answer; the grader scores it 0 and flags it for a regrade;
* ``error`` - the answer could not be read (a saved record that is not what
  ``save`` writes), or the grader could not run the notebook far enough.

:class:`Question` only judges (extract, verify, evaluate); what a learner sees, ``check()``,
``hint()``, ``solution()`` and the coloured result, is :mod:`helpers.view`.

``q1.check()`` finds the notebook's variables in the globals of the code that
called it (the notebook's namespace), saves them as plain data
(:meth:`Question.extract`, :mod:`helpers.answers`) and checks that data
(:meth:`Question.verify`). Checks never see the learner's live objects: the
grader runs ``extract`` in the learner's kernel and ``verify`` in a separate,
clean process (:mod:`grading`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch

from .answers import PLACEHOLDER, AnswerError, Placeholder, ____, is_placeholder, load, save  # noqa: F401
from .dtypes import parse_dtype as as_dtype  # noqa: F401  (the learner-facing name)
from .outcomes import (CHECK_FAILED, CORRECT, ERROR, INCORRECT, NOT_ATTEMPTED, OUTCOMES, SKIPPED,  # noqa: F401
                       Outcome)
from .view import QuestionView, result_html, solution_source  # noqa: F401


class Incorrect(Exception):
    """Raised by a check function to reject an answer; the message says what to fix."""


def expect(condition, message: str) -> None:
    """Reject the answer with ``message`` unless ``condition`` is true."""
    if not condition:
        raise Incorrect(message)


@dataclass
class Result:
    """The outcome of checking one question: ``status`` is a key of :data:`OUTCOMES`."""

    question: str
    status: str
    message: str = ""

    def __str__(self) -> str:
        label = OUTCOMES[self.status].label if self.status in OUTCOMES else self.status
        return f"{self.question}: {label}" + (f" - {self.message}" if self.message else "")

    __repr__ = __str__
    _repr_html_ = result_html


class Question(QuestionView):
    """One exercise question: it judges; :class:`~helpers.view.QuestionView` adds check/hint/solution.

    * ``title`` - a short description;
    * ``answers`` - the variable names the learner defines;
    * ``checker`` - a function taking those variables, as :mod:`helpers.answers`
      loads them (models as ``ModelFacts``, tensors as tensors...), as keyword arguments; it
      returns normally when the answer is right and raises :class:`Incorrect`
      (via :func:`expect`) when it is not;
    * ``hints`` - staged hints, shown by ``hint()``, ``hint(2)``, ...;
    * ``notebook`` - the solution notebook (in ``solutions/``) that holds the
      region ``# BEGIN SOLUTION q1`` ... ``# END SOLUTION`` shown by ``solution()``;
    * ``requires`` - ``"cuda"`` when the question needs a GPU;
    * ``name`` - ``"q1"``: given by :func:`numbered` in a lesson's checks.
    """

    def __init__(self, title, answers, checker, hints=(), notebook=None, points=1, requires=None, name=None):
        self.name, self.title, self.answers = name, title, tuple(answers)
        self.checker, self.hints, self.notebook = checker, tuple(hints), notebook
        self.points, self.requires = points, requires

    def __repr__(self) -> str:
        return f"<{self.name}: {self.title}; define {', '.join(self.answers)}, then {self.name}.check()>"

    def extract(self, namespace: dict, folder) -> None:
        """Save this question's answers from ``namespace`` as plain data in ``folder`` (:mod:`helpers.answers`).

        The only step that touches the learner's objects; the grader runs it in the learner's kernel.
        """
        save(self.name, {var: namespace.get(var, ____) for var in self.answers}, folder)

    def verify(self, folder) -> Result:
        """Check the answers saved in ``folder`` by :meth:`extract`; never raises.

        A check rejects an answer only by raising :class:`Incorrect`; any other
        exception is reported as ``check_failed``, never as ``incorrect``, so that
        a broken check cannot pass for a rejected answer. Checks therefore test
        the *kind* of each answer first (with :func:`expect`) before using it.
        """
        if self.requires == "cuda" and not torch.cuda.is_available():
            return Result(self.name, SKIPPED, "this question needs a CUDA GPU and none is available "
                                              "here; nothing to check on this machine")
        try:
            values = load(self.name, folder)
        except AnswerError as e:
            return Result(self.name, ERROR, f"the answer could not be read: {e}")
        for var in self.answers:
            if values.get(var, PLACEHOLDER) is PLACEHOLDER:
                return Result(self.name, NOT_ATTEMPTED, f"define `{var}` (replace ____ with your answer)")
        try:
            self.checker(**{var: values[var] for var in self.answers})
        except Incorrect as e:
            return Result(self.name, INCORRECT, str(e))
        except Exception as e:  # the check broke: not a verdict on the answer
            return Result(self.name, CHECK_FAILED,
                          f"the check itself failed with {type(e).__name__}: {str(e)[:200]}. This says nothing "
                          "about your answer: it is a problem with checking (please tell your instructor).")
        return Result(self.name, CORRECT)

    def evaluate(self, namespace: dict) -> Result:
        """:meth:`extract` then :meth:`verify`, through a temporary folder: what ``check()`` shows."""
        with tempfile.TemporaryDirectory(prefix="course-answer-") as folder:
            self.extract(namespace, folder)
            return self.verify(folder)


def numbered(*questions: Question, notebook: str | None = None) -> tuple[Question, ...]:
    """Name the questions ``q1``, ``q2``, ... in order, and tie them to their solution notebook.

    A lesson's checks end with ``q1, q2 = QUESTIONS = numbered(Question(...), Question(...), notebook=...)``,
    so each name is written once, where it is assigned.
    """
    for number, question in enumerate(questions, 1):
        question.name = f"q{number}"
        question.notebook = question.notebook or notebook
    return questions
