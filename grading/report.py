"""The grading report: a learner x question table for the terminal, and a CSV or JSON file."""

from __future__ import annotations

import csv
import json

from helpers.checking import CHECK_FAILED, CORRECT, ERROR, OUTCOMES

FIELDS = ["notebook", "question", "status", "message", "points", "max_points"]


def error_row(notebook: str, question: str, message: str, max_points: int = 1) -> dict:
    """A row for a question that could not be graded (the notebook did not run far enough)."""
    return {"notebook": notebook, "question": question, "status": ERROR, "message": message,
            "points": 0, "max_points": max_points}


def format_table(rows: list[dict]) -> str:
    """Learner x question table, then the summary line and the legend."""
    notebooks = list(dict.fromkeys(r["notebook"] for r in rows))
    questions = list(dict.fromkeys(r["question"] for r in rows))
    width = max([len("notebook")] + [len(n) for n in notebooks])
    lines = ["notebook".ljust(width) + "  " + "  ".join(q.ljust(5) for q in questions) + "  points"]
    for nb in notebooks:
        mine = {r["question"]: r for r in rows if r["notebook"] == nb}
        cells = [(OUTCOMES[mine[q]["status"]].symbol if q in mine else "").ljust(5) for q in questions]
        pts = sum(r["points"] for r in mine.values())
        mx = sum(r["max_points"] for r in mine.values())
        lines.append(nb.ljust(width) + "  " + "  ".join(cells) + f"  {pts}/{mx}")
    passed = sum(r["status"] == CORRECT for r in rows)
    total = sum(OUTCOMES[r["status"]].counts for r in rows)
    lines.append(f"{len(notebooks)} notebook(s) graded: {passed}/{total} checks passed")
    broken = sum(r["status"] == CHECK_FAILED for r in rows)
    if broken:
        lines.append(f"WARNING: {broken} check(s) failed to run (BUG): a problem with the course's checks, not "
                     "the learners' answers; not counted. Fix the check, then grade again.")
    lines.append("legend: " + ", ".join(f"{o.symbol} = {o.label.lower()}" for o in OUTCOMES.values()))
    return "\n".join(lines)


def write_report(rows: list[dict], path: str) -> None:
    """Write the rows to ``path``: JSON if it ends in ``.json``, else CSV with :data:`FIELDS`."""
    if path.endswith(".json"):
        with open(path, "w") as f:
            json.dump(rows, f, indent=2)
    else:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
