"""The code that runs *inside the learner's kernel* after their notebook: save every answer as data.

:data:`EXTRACT_CODE` is appended to the notebook as one last cell. It drops every ``helpers``
module the notebook may have patched, imports a fresh copy, and calls :func:`write_answers`,
which saves each question's variables as plain data (:mod:`helpers.answers`) in a folder.
Nothing here decides a verdict: :mod:`grading.verify` does, in another process. Code in the
notebook can change what this saves (it runs in the same kernel), never how it is judged.
"""

from __future__ import annotations

import importlib

EXTRACT_CODE = """\
import sys as _g_sys, importlib as _g_importlib
for _g_name in [n for n in _g_sys.modules if n.split(".")[0] in ("helpers", "grading")]:
    del _g_sys.modules[_g_name]  # drop anything the notebook patched; import afresh
_g_importlib.import_module("grading.extract").write_answers({folder!r}, {lesson!r}, globals())
"""


def lesson_questions(lesson: str) -> list:
    """The questions of ``helpers.checks.<lesson>`` (e.g. ``lesson01``)."""
    return list(importlib.import_module(f"helpers.checks.{lesson}").QUESTIONS)


def write_answers(folder: str, lesson: str, namespace: dict) -> None:
    """Save the answers of every question of ``lesson`` found in ``namespace`` into ``folder``."""
    for q in lesson_questions(lesson):
        q.extract(namespace, folder)
