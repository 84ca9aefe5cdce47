"""Grade submitted exercise notebooks: ``python -m helpers grade PATH ...``.

For each notebook, in its own process:

1. read it (the file is never written), and run every code cell top to bottom
   in a fresh kernel with nbclient, in a temporary working folder, with a
   per-cell timeout (a cell that runs too long is interrupted) and a cap on how
   much output is kept;
2. then, in the same kernel, import a *fresh* copy of ``helpers`` and evaluate
   every question of the lesson on the learner's live variables. The verdict
   never comes from saved outputs, printed text, or a ``check`` the learner
   redefined or deleted.

If the kernel dies (``os._exit``, a crash), the cells before the fatal one are
run again in a new kernel and graded; questions answered later count as not
passed. A notebook that exceeds its overall time limit is stopped and reported.

The report has one row per notebook and question: ``notebook``, ``question``,
``status`` (a key of ``helpers.checking.OUTCOMES``: ``correct``, ``incorrect``,
``not_attempted``, ``skipped``, ``check_failed``, ``error``), ``message``,
``points``, ``max_points``. ``skipped`` and ``check_failed`` (a check that broke,
not a wrong answer) do not count toward ``max_points``.

Threat model: honest mistakes and casual cheating (redefining ``q1.check``,
printing "Correct", deleting check cells). Learner code runs with your user's
permissions, as in any notebook; grade untrusted work in a container.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

FIELDS = ["notebook", "question", "status", "message", "points", "max_points"]


# --------------------------------------------------------------------------- in the kernel

def lesson_questions(lesson: str) -> list:
    """The questions of ``helpers.checks.<lesson>`` (e.g. ``lesson01``)."""
    return list(importlib.import_module(f"helpers.checks.{lesson}").QUESTIONS)


def write_results(path: str, lesson: str, namespace: dict) -> None:
    """Evaluate every question of ``lesson`` on ``namespace``; write JSON to ``path``."""
    from helpers.checking import CORRECT, OUTCOMES
    rows = []
    for q in lesson_questions(lesson):
        r = q.evaluate(namespace)
        rows.append({"question": q.name, "status": r.status, "message": r.message,
                     "points": q.points if r.status == CORRECT else 0,
                     "max_points": q.points if OUTCOMES[r.status].counts else 0})
    with open(path, "w") as f:
        json.dump(rows, f)


GRADING_CODE = """\
import sys as _g_sys, importlib as _g_importlib
for _g_name in [n for n in _g_sys.modules if n == "helpers" or n.startswith("helpers.")]:
    del _g_sys.modules[_g_name]  # drop anything the notebook patched; import afresh
_g_importlib.import_module("helpers.grader").write_results({path!r}, {lesson!r}, globals())
"""


# --------------------------------------------------------------------------- one notebook

def lesson_of(nb, path: Path) -> str | None:
    """``lessonNN`` from the notebook metadata, else from a file name ``NN_topic...``."""
    lesson = nb.metadata.get("course", {}).get("lesson")
    if lesson:
        return lesson
    m = re.match(r"(\d\d)_", path.name)
    return f"lesson{m.group(1)}" if m else None


def _make_client(nb, timeout: float, max_output_bytes: int, workdir: str):
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """Keeps at most ``max_output_bytes`` of cell output; drops the rest."""

        kept = 0
        truncated = False

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
            if self.kept + size > max_output_bytes:
                self.truncated = True
                return None
            self.kept += size
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, startup_timeout=120,
        error_on_timeout={"ename": "Timeout", "evalue": f"cell ran over {timeout:g} s and was interrupted",
                          "traceback": []},
        resources={"metadata": {"path": workdir}},
    )


def _settle(client) -> None:
    """After a timeout, let the interrupt land on a throwaway cell, not on the next real one."""
    from nbformat.v4 import new_code_cell
    try:
        client.execute_cell(new_code_cell("import time as _t; _t.sleep(1)"), 0, store_history=False)
    except Exception:
        pass


def _run(nb, indices, timeout, max_output_bytes, workdir, lesson, results_path):
    """Run the code cells ``indices`` then grade. Returns (events, died_at or None, graded)."""
    from nbclient.exceptions import DeadKernelError

    events, errors = [], []
    client = _make_client(nb, timeout, max_output_bytes, workdir)
    # every error reply, a timeout included, comes through this hook
    client.on_cell_error = lambda cell, cell_index, execute_reply: errors.append(execute_reply["content"])
    with client.setup_kernel():
        for i in indices:
            errors.clear()
            try:
                client.execute_cell(nb.cells[i], i)
            except DeadKernelError:
                events.append(f"the kernel died in cell {i + 1}")
                return events, i, False
            for err in list(errors):
                if err.get("ename") == "Timeout":
                    events.append(f"cell {i + 1} ran over the time limit ({timeout:g} s) and was interrupted")
                    _settle(client)
                else:
                    events.append(f"cell {i + 1} raised {err.get('ename')}: {str(err.get('evalue', ''))[:120]}")
        if client.truncated:
            events.append(f"output over {max_output_bytes / 1e6:g} MB was dropped")
        from nbformat.v4 import new_code_cell
        grading = new_code_cell(GRADING_CODE.format(path=results_path, lesson=lesson))
        nb.cells.append(grading)
        client.timeout = max(timeout, 300)
        errors.clear()
        try:
            client.execute_cell(grading, len(nb.cells) - 1)
        except DeadKernelError:
            events.append("the kernel died while grading")
            return events, None, False
        if errors:
            events.append(f"grading failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    return events, None, os.path.exists(results_path)


def grade_notebook(path: Path, timeout: float = 120, max_output_mb: float = 1.0) -> dict:
    """Grade one notebook in this process. Returns ``{"rows": [...], "events": [...]}``."""
    import nbformat

    path = Path(path)
    name = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
    except Exception as e:
        return {"rows": [_error_row(name, "*", f"not a readable notebook ({type(e).__name__}: {e})")],
                "events": []}
    lesson = lesson_of(nb, path)
    try:
        questions = lesson_questions(lesson) if lesson else None
    except ModuleNotFoundError:
        questions = None
    if not questions:
        return {"rows": [_error_row(name, "*", "cannot tell which lesson this is: keep the file name "
                                               "NN_topic.ipynb or the notebook's course metadata")],
                "events": []}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    limit = int(max_output_mb * 1e6)
    with tempfile.TemporaryDirectory(prefix="grade-") as work:
        results = os.path.join(work, ".grade-results.json")
        events, died_at, graded = _run(nb, code, timeout, limit, work, lesson, results)
        if died_at is not None:
            # run the cells before the fatal one again, in a new kernel, then grade
            with open(path, encoding="utf-8") as f:
                nb = nbformat.read(f, as_version=4)
            before = [i for i in code if i < died_at]
            more, _, graded = _run(nb, before, timeout, limit, work, lesson, results)
            events += [e for e in more if e not in events]
            events.append(f"graded what ran before cell {died_at + 1}; later answers count as not passed")
        rows = []
        if graded:
            with open(results) as f:
                for row in json.load(f):
                    rows.append({"notebook": name, **row})
        else:
            rows = [_error_row(name, q.name, "; ".join(events) or "grading did not run", q.points)
                    for q in questions]
    note = "; ".join(events)
    for row in rows:
        if note and row["status"] != "correct":
            row["message"] = (row["message"] + " | " if row["message"] else "") + note
    return {"rows": rows, "events": events}


def _error_row(notebook, question, message, max_points=1):
    from .checking import ERROR
    return {"notebook": notebook, "question": question, "status": ERROR, "message": message,
            "points": 0, "max_points": max_points}


# --------------------------------------------------------------------------- many notebooks

def find_notebooks(paths) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(x for x in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in x.parts)
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return found


def _grade_in_subprocess(path: Path, timeout: float, max_output_mb: float) -> dict:
    """Grade one notebook in a child process, with an overall time limit."""
    import nbformat
    try:
        n_cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
    except Exception:
        n_cells = 1
    overall = timeout * (n_cells + 3) + 120
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = out.name
    proc = None
    cmd = [sys.executable, "-m", "helpers.grader", str(path), "--timeout", str(timeout),
           "--max-output", str(max_output_mb), "--out", out_path]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=overall)
        with open(out_path) as f:
            return json.load(f)
    except subprocess.TimeoutExpired:
        msg = f"grading this notebook took over {overall:g} s and was stopped"
    except (OSError, ValueError):
        msg = f"the grading process failed: {((proc and proc.stderr) or '').strip()[-300:]}"
    finally:
        if os.path.exists(out_path):
            os.unlink(out_path)
    return {"rows": [_error_row(str(path), "*", msg)], "events": [msg]}


def grade(paths, timeout: float = 120, jobs: int = 1, max_output_mb: float = 1.0) -> list[dict]:
    """Grade every notebook under ``paths``; returns all report rows."""
    notebooks = find_notebooks(paths)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda p: _grade_in_subprocess(p, timeout, max_output_mb), notebooks))
    return [row for r in results for row in r["rows"]]


def format_table(rows: list[dict]) -> str:
    """Learner x question table, then the summary line and the legend."""
    from .checking import CHECK_FAILED, CORRECT, OUTCOMES
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
    if path.endswith(".json"):
        with open(path, "w") as f:
            json.dump(rows, f, indent=2)
    else:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)


def main(args) -> int:
    """The ``grade`` command (arguments parsed by ``helpers.__main__``)."""
    if args.report and not args.report.endswith((".json", ".csv")):
        print("error: --report must end in .json or .csv", file=sys.stderr)
        return 2
    try:
        rows = grade(args.paths, timeout=args.timeout, jobs=args.jobs, max_output_mb=args.max_output)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print("error: no notebooks found", file=sys.stderr)
        return 2
    print(format_table(rows))
    for r in rows:
        if r["status"] != "correct" and r["message"]:
            print(f"  {r['notebook']} {r['question']}: {r['status']}: {r['message']}")
    if args.report:
        write_report(rows, args.report)
        print(f"report written to {args.report}")
    return 0


if __name__ == "__main__":  # the child process of _grade_in_subprocess
    p = argparse.ArgumentParser()
    p.add_argument("notebook")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--max-output", type=float, default=1.0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    result = grade_notebook(Path(a.notebook), a.timeout, a.max_output)
    with open(a.out, "w") as f:
        json.dump(result, f)
