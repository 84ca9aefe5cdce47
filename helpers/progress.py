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
import stat
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


MAX_READ_BYTES = 4 * 2**20  # the end of a progress file: thousands of checks, the latest ones


def read_records(path: Path, limit: int = MAX_READ_BYTES) -> list[dict]:
    """The records in the last ``limit`` bytes of one progress file; lines that are not a record are
    skipped, and every field is kept as a short string."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - limit))
        text = f.read(limit).decode("utf-8", errors="replace")
    lines = text.splitlines()[1 if size > limit else 0:]  # the first line may be cut
    records = []
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and {"question", "status"} <= r.keys():
            records.append({k: str(r.get(k) or "")[:80] for k in ("notebook", "question", "status", "time")})
    return records


def _own_file(home: Path) -> Path | None:
    """``home``'s progress file if it is a regular file (not a link) owned by whoever owns ``home``:
    a learner cannot show their checks under another learner's name (their files are theirs)."""
    path = home / FILE_NAME
    try:
        st = path.lstat()
        return path if stat.S_ISREG(st.st_mode) and st.st_uid == home.stat().st_uid else None
    except OSError:
        return None


def find_learners(paths) -> dict[str, Path]:
    """``{learner: progress file}`` for each path: a progress file, a learner's home, or a folder of homes.

    A learner is named after their home folder, and only a file that its owner wrote counts
    (:func:`_own_file`).
    """
    found = {}
    for p in map(Path, paths):
        if p.is_file():
            found[p.parent.name or str(p)] = p
        elif (p / FILE_NAME).exists():
            if _own_file(p):
                found[p.name] = p / FILE_NAME
        elif p.is_dir():
            for home in sorted(x for x in p.iterdir() if x.is_dir() and not x.is_symlink()):
                if _own_file(home):
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
            key = (r["notebook"], r["question"])
            row = latest.setdefault(key, {"learner": learner, "notebook": key[0], "question": key[1],
                                          "attempts": 0})
            row.update(status=r["status"], last=r["time"], attempts=row["attempts"] + 1)
        rows += latest.values()
    return rows


def format_progress(rows: list[dict]) -> str:
    """The learners x questions table (``01/q1`` = exercise 01, question 1), then a legend."""
    from .outcomes import OUTCOMES
    from .tables import grid

    def column(r):
        return f"{r['notebook'][:2]}/{r['question']}"

    learners = list(dict.fromkeys(r["learner"] for r in rows))
    columns = sorted({column(r) for r in rows})
    by = {(r["learner"], column(r)): r for r in rows}

    def show(learner, c):
        r = by.get((learner, c))
        if r is None:
            return ""
        return f"{OUTCOMES[r['status']].symbol if r['status'] in OUTCOMES else '?'}/{r['attempts']}"

    def last(learner):
        return max((r["last"] for r in rows if r["learner"] == learner), default="")

    lines = grid("learner", learners, columns, show, "last check", last, min_width=6)
    stuck = sum(r["status"] != "correct" and r["attempts"] >= 3 for r in rows)
    lines.append(f"{len(learners)} learner(s); {stuck} question(s) checked 3+ times and not yet correct")
    lines.append("cell = latest outcome/number of checks; legend: "
                 + ", ".join(f"{o.symbol} = {o.label.lower()}" for o in OUTCOMES.values()))
    return "\n".join(lines)


def main(args) -> int:
    """The ``progress`` command (arguments parsed by ``helpers.__main__``). Returns the exit code."""
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
        from .tables import write_csv
        write_csv(args.csv, ["learner", "notebook", "question", "status", "attempts", "last"], rows)
        print(f"written to {args.csv}")
    return 0
