"""Judge saved answers in a clean process: ``python -I -B -X pycache_prefix=EMPTY -m grading.judge``.

:mod:`grading.batch` starts one judge for a whole batch, after every notebook's kernel (and
everything it started) has ended. ``-I``: no ``PYTHON*`` variables, no user site, not the current
folder on ``sys.path``; ``-B`` and a bytecode-cache prefix that is a new, empty folder: no
``__pycache__`` file a submission could have planted is read; a fresh empty working folder.
Nothing of a submission is importable here.

Standard input: one JSON object per line, ``{"lesson": "lesson01", "folder": ANSWERS}`` (and
``"error"`` for a notebook that could not be graded: its questions are listed with that error). For each,
standard output gets one JSON line ``[{"question", "status", "message"}, ...]``, in order, as soon
as it is judged (so the batch can stop a judge stuck on one notebook and go on with the others).
Each check loads its answers as data (:func:`helpers.answers.load`) and computes every reference
itself; references are computed once per lesson and reused for every notebook of the batch.
"""

from __future__ import annotations

import json
import sys


def judge(lesson: str, folder: str, error: str | None = None) -> list[dict]:
    """One row per question of ``lesson`` (``question``, ``status``, ``message``, ``points``), judged
    from ``folder``; with ``error`` (the notebook could not be graded), every question gets that error."""
    from .extract import lesson_questions

    try:
        questions = lesson_questions(lesson)
    except (ModuleNotFoundError, ValueError):
        return [{"question": "*", "status": "error", "message": f"no checks for {lesson!r}", "points": 1}]
    if error is not None:
        return [{"question": q.name, "status": "error", "message": error, "points": q.points} for q in questions]
    return [{"question": q.name, "status": r.status, "message": r.message, "points": q.points} for q, r in
            ((q, q.verify(folder)) for q in questions)]


def main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.write(json.dumps(judge(job["lesson"], job["folder"], job.get("error"))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
