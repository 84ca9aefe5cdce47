"""One row per learner, one column per exercise: the gradebook an LMS imports.

``grade SUBMISSIONS --roster roster.csv --gradebook grades.csv [--gradebook-format canvas|moodle|plain]``.

**The roster** is a CSV file with a header: ``id``, ``name``, ``email``, ``path`` (the learner's
notebook, or a folder of them; relative to the roster's own folder unless absolute), and
optionally ``section``. A graded notebook belongs to the learner whose ``path`` it is, or lies in.

**The gradebook** has one row per roster entry, in roster order, and one column per exercise
(every lesson graded in the batch): the points of that learner's notebook for it, **0 when they
handed nothing in** (and listed as missing), the best notebook when they handed in several. The
formats follow the LMSs' documented CSV imports:

* ``canvas`` (Canvas, Gradebook > Import): ``Student, ID, SIS User ID, SIS Login ID, Section``,
  then one column per assignment, and a second row ``Points Possible``. The roster's ``id`` goes
  to ``SIS User ID`` and its ``email`` to ``SIS Login ID`` (Canvas matches students on either);
  Canvas's own numeric ``ID`` is left empty. No extra columns: Canvas would create an assignment
  for each unknown column, so missing work is only listed on the terminal;
* ``moodle`` (Moodle, Grades > Import > CSV file): ``ID number, Email address, Full name``, one
  column per grade item, then ``Total``; map ``ID number`` or ``Email address`` to the user when
  importing;
* ``plain`` (the default, for a spreadsheet): ``id, name, email, section``, one column per
  exercise, ``total``, ``max``, and ``missing`` (the exercises not handed in).

Notebooks that match no roster entry are never dropped: they are returned (and printed) as
unmatched, with their points, for the instructor to assign.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from helpers.tables import clean, write_csv

from .batch import lesson_of

FORMATS = ("plain", "canvas", "moodle")
ROSTER_COLUMNS = ("id", "name", "email", "path")


class RosterError(ValueError):
    """The roster cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class Learner:
    id: str
    name: str
    email: str
    path: Path
    section: str = ""

    def owns(self, notebook: Path) -> bool:
        notebook = notebook.resolve()
        return notebook == self.path or self.path in notebook.parents


def read_roster(path: str) -> list[Learner]:
    """The learners of a roster CSV (see the module docstring)."""
    where = Path(path)
    try:
        with open(where, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ROSTER_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise RosterError(f"{where}: the roster needs the columns {', '.join(ROSTER_COLUMNS)} "
                                  f"(missing: {', '.join(missing)})")
            learners = []
            for n, r in enumerate(reader, 2):
                if not (r["id"] or "").strip() or not (r["path"] or "").strip():
                    raise RosterError(f"{where}, line {n}: every learner needs an id and a path")
                own = Path(r["path"].strip())
                learners.append(Learner(r["id"].strip(), (r["name"] or "").strip(), (r["email"] or "").strip(),
                                        (own if own.is_absolute() else where.parent / own).resolve(),
                                        (r.get("section") or "").strip()))
    except OSError as e:
        raise RosterError(f"the roster cannot be read: {e}") from None
    ids = [learner.id for learner in learners]
    if len(set(ids)) != len(ids):
        raise RosterError(f"{where}: a learner id appears twice")
    return learners


@dataclass
class Gradebook:
    exercises: list[str]               # "01", "02", ...
    possible: dict[str, int]           # exercise -> max points
    scores: dict[str, dict[str, int]]  # learner id -> exercise -> points (handed in only)
    learners: list[Learner]
    unmatched: list[tuple[str, str, int, int]]  # (notebook, exercise, points, max points)

    def points(self, learner: Learner, exercise: str) -> int:
        return self.scores.get(learner.id, {}).get(exercise, 0)

    def missing(self, learner: Learner) -> list[str]:
        return [e for e in self.exercises if e not in self.scores.get(learner.id, {})]


def _exercise(notebook: Path) -> str:
    """``"01"`` for a lesson-01 notebook (from its metadata or name, as the grader tells lessons apart)."""
    lesson, _ = lesson_of(notebook)
    if lesson:
        return lesson.removeprefix("lesson")
    m = re.match(r"(\d\d)_", notebook.name)
    return m.group(1) if m else "?"


def build(rows: list[dict], learners: list[Learner]) -> Gradebook:
    """Sum each notebook's rows, give each notebook to its learner, keep each learner's best per exercise."""
    per_notebook: dict[str, list[int]] = {}
    for r in rows:
        total = per_notebook.setdefault(r["notebook"], [0, 0])
        total[0] += r["points"]
        total[1] += r["max_points"]
    possible: dict[str, int] = {}
    scores: dict[str, dict[str, int]] = {}
    unmatched = []
    for notebook, (points, max_points) in per_notebook.items():
        exercise = _exercise(Path(notebook))
        possible[exercise] = max(possible.get(exercise, 0), max_points)
        owner = next((learner for learner in learners if learner.owns(Path(notebook))), None)
        if owner is None:
            unmatched.append((notebook, exercise, points, max_points))
        else:
            mine = scores.setdefault(owner.id, {})
            mine[exercise] = max(mine.get(exercise, 0), points)
    return Gradebook(sorted(possible), possible, scores, learners, unmatched)


def write(book: Gradebook, path: str, fmt: str = "plain") -> None:
    """Write the gradebook as ``fmt`` (one of :data:`FORMATS`)."""
    title = {e: f"Exercise {e}" for e in book.exercises}
    if fmt == "canvas":
        fields = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] + [title[e] for e in book.exercises]
        rows = [{"Student": "    Points Possible", **{title[e]: book.possible[e] for e in book.exercises}}]
        rows += [{"Student": lr.name, "ID": "", "SIS User ID": lr.id, "SIS Login ID": lr.email, "Section": lr.section,
                  **{title[e]: book.points(lr, e) for e in book.exercises}} for lr in book.learners]
    elif fmt == "moodle":
        fields = ["ID number", "Email address", "Full name"] + [title[e] for e in book.exercises] + ["Total"]
        rows = [{"ID number": lr.id, "Email address": lr.email, "Full name": lr.name,
                 **{title[e]: book.points(lr, e) for e in book.exercises},
                 "Total": sum(book.points(lr, e) for e in book.exercises)} for lr in book.learners]
    elif fmt == "plain":
        fields = ["id", "name", "email", "section"] + [title[e] for e in book.exercises] + ["total", "max", "missing"]
        rows = [{"id": lr.id, "name": lr.name, "email": lr.email, "section": lr.section,
                 **{title[e]: book.points(lr, e) for e in book.exercises},
                 "total": sum(book.points(lr, e) for e in book.exercises),
                 "max": sum(book.possible.values()), "missing": " ".join(book.missing(lr))} for lr in book.learners]
    else:
        raise ValueError(f"unknown gradebook format {fmt!r}: use one of {', '.join(FORMATS)}")
    write_csv(path, fields, rows)


def summary(book: Gradebook) -> list[str]:
    """Lines for the terminal: who handed what in, and the notebooks nobody on the roster owns."""
    lines = [f"gradebook: {len(book.learners)} learner(s), exercises {', '.join(book.exercises) or '-'}"]
    for lr in book.learners:
        if book.missing(lr):
            lines.append(clean(f"  missing (scored 0): {lr.id} {lr.name}: exercise {', '.join(book.missing(lr))}"))
    for notebook, exercise, points, max_points in book.unmatched:
        lines.append(clean(f"  not on the roster: {notebook} (exercise {exercise}, {points}/{max_points}): "
                           "add its owner to the roster to count it"))
    return lines
