"""The grading report: a learner x question table for the terminal, and a CSV or JSON file.

One row per notebook and question (:data:`FIELDS`), scored by :func:`score`: every question
counts toward ``max_points`` whatever happened to it, except ``skipped`` (it needs hardware this
grader lacks). ``check_failed`` (the check broke on this answer) earns 0 and is flagged: fix the
check, then ``grade --regrade ANSWERS`` judges the kept answers again.

Everything a submission could have written (its file name, error text, messages that quote it)
goes through :func:`clean`: no terminal control characters, and no CSV cell that a spreadsheet
would run as a formula.
"""

from __future__ import annotations

import json

from helpers.outcomes import CHECK_FAILED, CORRECT, OUTCOMES
from helpers.tables import clean, grid, write_csv

FIELDS = ["notebook", "question", "status", "message", "points", "max_points"]


def score(status: str, points: int) -> tuple[int, int]:
    """``(points earned, points counted)`` for a question worth ``points`` that ended in ``status``."""
    counts = OUTCOMES[status].counts if status in OUTCOMES else True
    return (points if status == CORRECT else 0), (points if counts else 0)


def row(notebook: str, question: str, status: str, message: str, points: int = 1) -> dict:
    """One report row, scored."""
    earned, counted = score(status, points)
    return {"notebook": notebook, "question": question, "status": status, "message": message,
            "points": earned, "max_points": counted}


def format_table(rows: list[dict]) -> str:
    """Learner x question table, then the summary line and the legend."""
    notebooks = list(dict.fromkeys(r["notebook"] for r in rows))
    questions = list(dict.fromkeys(r["question"] for r in rows))
    by = {(r["notebook"], r["question"]): r for r in rows}

    def total(nb):
        mine = [r for r in rows if r["notebook"] == nb]
        return f"{sum(r['points'] for r in mine)}/{sum(r['max_points'] for r in mine)}"

    lines = grid("notebook", notebooks, questions,
                 lambda nb, q: OUTCOMES[by[nb, q]["status"]].symbol if (nb, q) in by else "", "points", total)
    passed = sum(r["status"] == CORRECT for r in rows)
    total = sum(r["max_points"] > 0 for r in rows)
    lines.append(f"{len(notebooks)} notebook(s) graded: {passed}/{total} checks passed")
    broken = sum(r["status"] == CHECK_FAILED for r in rows)
    if broken:
        lines.append(f"WARNING: {broken} check(s) failed to run (BUG) and scored 0: a problem with the course's "
                     "checks on these answers. Fix the check, then judge the kept answers again: "
                     "grade --regrade ANSWERS (keep them with --answers ANSWERS).")
    lines.append("legend: " + ", ".join(f"{o.symbol} = {o.label.lower()}" for o in OUTCOMES.values()))
    return "\n".join(lines)


def problems(rows: list[dict]) -> list[str]:
    """One line per row that is not correct and has a message (for the terminal)."""
    return [f"  {clean(r['notebook'])} {clean(r['question'])}: {r['status']}: {clean(r['message'])}"
            for r in rows if r["status"] != CORRECT and r["message"]]


def write_report(rows: list[dict], path: str) -> None:
    """Write the rows to ``path``: JSON if it ends in ``.json``, else CSV with :data:`FIELDS`."""
    if path.endswith(".json"):
        with open(path, "w") as f:
            json.dump([{k: clean(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows], f, indent=2)
    else:
        write_csv(path, FIELDS, rows)
