"""The code that runs *inside the learner's kernel* after their notebook: evaluate every question.

:data:`GRADING_CODE` is appended to the notebook as one last cell. It drops every ``helpers``
module the notebook may have patched, imports a fresh copy, and calls :func:`write_results`,
which writes one JSON row per question to a file the grader reads back.
"""

from __future__ import annotations

import importlib
import json

GRADING_CODE = """\
import sys as _g_sys, importlib as _g_importlib
for _g_name in [n for n in _g_sys.modules if n.split(".")[0] in ("helpers", "grading")]:
    del _g_sys.modules[_g_name]  # drop anything the notebook patched; import afresh
_g_importlib.import_module("grading.kernel").write_results({path!r}, {lesson!r}, globals())
"""


def lesson_questions(lesson: str) -> list:
    """The questions of ``helpers.checks.<lesson>`` (e.g. ``lesson01``)."""
    return list(importlib.import_module(f"helpers.checks.{lesson}").QUESTIONS)


def write_results(path: str, lesson: str, namespace: dict) -> None:
    """Evaluate every question of ``lesson`` on ``namespace``; write the rows as JSON to ``path``."""
    from helpers.checking import CORRECT, OUTCOMES

    rows = []
    for q in lesson_questions(lesson):
        r = q.evaluate(namespace)
        rows.append({"question": q.name, "status": r.status, "message": r.message,
                     "points": q.points if r.status == CORRECT else 0,
                     "max_points": q.points if OUTCOMES[r.status].counts else 0})
    with open(path, "w") as f:
        json.dump(rows, f)
