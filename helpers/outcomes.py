"""The outcomes of checking a question: one table, shared by the notebooks, the grader and the progress view.

A leaf module (standard library only): the grader's worker and report, and the progress view,
read it without importing torch or the checks.
"""

from __future__ import annotations

from dataclasses import dataclass

CORRECT, INCORRECT, NOT_ATTEMPTED = "correct", "incorrect", "not_attempted"
SKIPPED, CHECK_FAILED, ERROR = "skipped", "check_failed", "error"


@dataclass(frozen=True)
class Outcome:
    """How one status is shown: ``label`` to a learner, ``symbol`` in the grader's table."""

    label: str
    symbol: str
    colour: str
    background: str
    counts: bool  # do the question's points count toward the learner's maximum? (grading.report.score)


OUTCOMES = {
    CORRECT: Outcome("Correct", "ok", "#1b7f3b", "#e8f5ec", True),
    INCORRECT: Outcome("Incorrect", "x", "#b42318", "#fdecea", True),
    NOT_ATTEMPTED: Outcome("Not attempted yet", "-", "#8a6d00", "#fff8e1", True),
    SKIPPED: Outcome("Skipped", "skip", "#475467", "#f2f4f7", False),
    CHECK_FAILED: Outcome("Problem with the check (not your answer)", "BUG", "#6941c6", "#f4ebff", True),
    ERROR: Outcome("Could not be graded", "ERR", "#b42318", "#fdecea", True),
}
