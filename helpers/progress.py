"""Learner progress: every ``qN.check()`` adds one line to a small file; instructors summarize them.

What is recorded, and only this: the exercise notebook, the question, the outcome and the time,
as one JSON line in ``~/.course_progress.jsonl`` (no code, no answers). ``$COURSE_PROGRESS_FILE``
moves the file; set it to an empty string to record nothing (the tests and the grader do).

An instructor summarizes a folder of learners' homes (``/home`` on a workshop hub: one folder per
learner) as a learners x questions table::

    python -m helpers progress /home            # latest outcome of every question, per learner
    python -m helpers progress /home --csv progress.csv

Each cell shows the latest outcome's symbol (the grader's symbols: ``ok``, ``x``, ``-``, ...) and,
after a slash, how many times the learner checked that question; a learner whose last check was
long ago shows up in the ``last check`` column.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

FILE_NAME = ".course_progress.jsonl"


def progress_file() -> Path | None:
    """Where this learner's checks are recorded (None: recording is off)."""
    where = os.environ.get("COURSE_PROGRESS_FILE")
    if where is not None:
        return Path(where) if where.strip() else None
    return Path.home() / FILE_NAME


def record(notebook: str | None, question: str, status: str) -> None:
    """Append one check's outcome to :func:`progress_file`. Never raises: a full disk or a read-only
    home must not break a learner's ``check()``."""
    path = progress_file()
    if path is None:
        return
    line = json.dumps({"notebook": notebook, "question": question, "status": status,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        pass


def read_records(path: Path) -> list[dict]:
    """The records in one progress file; lines that are not a record are skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and {"question", "status"} <= r.keys():
            records.append(r)
    return records


def find_learners(paths) -> dict[str, Path]:
    """``{learner: progress file}`` for each path: a progress file, a learner's home, or a folder of homes."""
    found = {}
    for p in map(Path, paths):
        if p.is_file():
            found[p.parent.name or str(p)] = p
        elif (p / FILE_NAME).is_file():
            found[p.name] = p / FILE_NAME
        elif p.is_dir():
            for home in sorted(x for x in p.iterdir() if (x / FILE_NAME).is_file()):
                found[home.name] = home / FILE_NAME
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return found


def summarize(paths) -> list[dict]:
    """One row per learner and question: latest ``status``, ``attempts``, ``last`` check time."""
    rows = []
    for learner, path in find_learners(paths).items():
        latest: dict[tuple, dict] = {}
        for r in read_records(path):
            key = (str(r.get("notebook") or ""), str(r["question"]))
            row = latest.setdefault(key, {"learner": learner, "notebook": key[0], "question": key[1],
                                          "attempts": 0})
            row.update(status=r["status"], last=r.get("time", ""), attempts=row["attempts"] + 1)
        rows += latest.values()
    return rows


def format_progress(rows: list[dict]) -> str:
    """The learners x questions table (``01/q1`` = exercise 01, question 1), then a legend."""
    from .checking import OUTCOMES

    def column(r):
        return f"{r['notebook'][:2]}/{r['question']}"

    learners = list(dict.fromkeys(r["learner"] for r in rows))
    columns = sorted({column(r) for r in rows})
    width = max([len("learner")] + [len(n) for n in learners])
    cw = max([6] + [len(c) for c in columns])
    lines = ["learner".ljust(width) + "  " + "  ".join(c.ljust(cw) for c in columns) + "  last check"]
    for learner in learners:
        mine = {column(r): r for r in rows if r["learner"] == learner}
        cells = []
        for c in columns:
            r = mine.get(c)
            symbol = OUTCOMES[r["status"]].symbol if r and r["status"] in OUTCOMES else (r and "?")
            cells.append((f"{symbol}/{r['attempts']}" if r else "").ljust(cw))
        last = max((r["last"] for r in mine.values()), default="")
        lines.append(learner.ljust(width) + "  " + "  ".join(cells) + "  " + last)
    stuck = sum(r["status"] != "correct" and r["attempts"] >= 3 for r in rows)
    lines.append(f"{len(learners)} learner(s); {stuck} question(s) checked 3+ times and not yet correct")
    lines.append("cell = latest outcome/number of checks; legend: "
                 + ", ".join(f"{o.symbol} = {o.label.lower()}" for o in OUTCOMES.values()))
    return "\n".join(lines)


def main(args) -> int:
    """The ``progress`` command (arguments parsed by ``helpers.__main__``). Returns the exit code."""
    import csv
    import sys

    try:
        rows = summarize(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"no progress recorded under {', '.join(args.paths)} (looked for */{FILE_NAME})")
        return 0
    print(format_progress(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["learner", "notebook", "question", "status", "attempts", "last"])
            w.writeheader()
            w.writerows(rows)
        print(f"written to {args.csv}")
    return 0
