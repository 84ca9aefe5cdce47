"""Judge saved answers in a clean process: ``python -I -B -m grading.verify LESSON ANSWERS_FOLDER``.

:mod:`grading.notebook` starts this after the learner's kernel (and everything it started) has
ended, with ``-I`` (no ``PYTHON*`` variables, no user site, not the current folder on
``sys.path``), ``-B`` (no bytecode written) and a fresh empty working folder: nothing of the
submission is importable here. Each question's check loads its answers as data
(:func:`helpers.answers.load`) and computes every reference itself. Prints the report rows as JSON.
"""

from __future__ import annotations

import json
import sys


def verify(lesson: str, folder: str) -> list[dict]:
    """One report row (without ``notebook``) per question of ``lesson``, judged from ``folder``."""
    from helpers.checking import CORRECT, OUTCOMES

    from .extract import lesson_questions

    rows = []
    for q in lesson_questions(lesson):
        r = q.verify(folder)
        rows.append({"question": q.name, "status": r.status, "message": r.message,
                     "points": q.points if r.status == CORRECT else 0,
                     "max_points": q.points if OUTCOMES[r.status].counts else 0})
    return rows


if __name__ == "__main__":
    lesson, folder = sys.argv[1], sys.argv[2]
    rows = verify(lesson, folder)
    sys.stdout.write(json.dumps(rows))
