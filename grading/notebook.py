"""Grade one notebook in this process: run its cells in a fresh kernel, then evaluate its questions.

``python -m grading.notebook SPEC_JSON`` is the worker :mod:`grading.batch` starts for each
notebook; it prints the result as JSON.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nbclient import NotebookClient

from .kernel import GRADING_CODE, lesson_questions
from .report import error_row


class CappedClient(NotebookClient):
    """An nbclient client that keeps at most ``max_output_bytes`` of cell output and drops the rest."""

    def __init__(self, nb, max_output_bytes: int, **kwargs):
        super().__init__(nb, **kwargs)
        self.max_output_bytes, self.kept, self.truncated = max_output_bytes, 0, False

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        if self.kept + size > self.max_output_bytes:
            self.truncated = True
            return None
        self.kept += size
        return super().output(outs, msg, display_id, cell_index)


@dataclass
class Run:
    """What happened when the cells ran: ``events`` to report, where the kernel died, whether it graded."""

    events: list[str] = field(default_factory=list)
    died_at: int | None = None
    graded: bool = False


def lesson_of(nb, path: Path) -> str | None:
    """``lessonNN`` from the notebook metadata, else from a file name ``NN_topic...``."""
    lesson = nb.metadata.get("course", {}).get("lesson")
    if lesson:
        return lesson
    m = re.match(r"(\d\d)_", path.name)
    return f"lesson{m.group(1)}" if m else None


def _settle(client) -> None:
    """After a timeout, let the interrupt land on a throwaway cell, not on the next real one."""
    from nbformat.v4 import new_code_cell
    try:
        client.execute_cell(new_code_cell("import time as _t; _t.sleep(1)"), 0, store_history=False)
    except Exception:
        pass


def run_and_grade(nb, indices, timeout, max_output_bytes, workdir, lesson, results_path) -> Run:
    """Run the code cells ``indices`` in a fresh kernel, then the grading cell."""
    from nbclient.exceptions import DeadKernelError
    from nbformat.v4 import new_code_cell

    run, errors = Run(), []
    client = CappedClient(
        nb, max_output_bytes, timeout=timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, startup_timeout=120,
        error_on_timeout={"ename": "Timeout", "evalue": f"cell ran over {timeout:g} s and was interrupted",
                          "traceback": []},
        resources={"metadata": {"path": workdir}})
    # every error reply, a timeout included, comes through this hook
    client.on_cell_error = lambda cell, cell_index, execute_reply: errors.append(execute_reply["content"])
    with client.setup_kernel():
        for i in indices:
            errors.clear()
            try:
                client.execute_cell(nb.cells[i], i)
            except DeadKernelError:
                run.events.append(f"the kernel died in cell {i + 1}")
                run.died_at = i
                return run
            for err in list(errors):
                if err.get("ename") == "Timeout":
                    run.events.append(f"cell {i + 1} ran over the time limit ({timeout:g} s) and was interrupted")
                    _settle(client)
                else:
                    run.events.append(f"cell {i + 1} raised {err.get('ename')}: {str(err.get('evalue', ''))[:120]}")
        if client.truncated:
            run.events.append(f"output over {max_output_bytes / 1e6:g} MB was dropped")
        grading = new_code_cell(GRADING_CODE.format(path=results_path, lesson=lesson))
        nb.cells.append(grading)
        client.timeout = max(timeout, 300)
        errors.clear()
        try:
            client.execute_cell(grading, len(nb.cells) - 1)
        except DeadKernelError:
            run.events.append("the kernel died while grading")
            return run
        if errors:
            run.events.append(f"grading failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    run.graded = os.path.exists(results_path)
    return run


def grade_notebook(path: Path, timeout: float = 120, max_output_mb: float = 1.0) -> dict:
    """Grade one notebook in this process. Returns ``{"rows": [...], "events": [...]}``."""
    import nbformat

    path, name = Path(path), str(path)
    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
    except Exception as e:
        return {"rows": [error_row(name, "*", f"not a readable notebook ({type(e).__name__}: {e})")], "events": []}
    lesson = lesson_of(nb, path)
    try:
        questions = lesson_questions(lesson) if lesson else None
    except ModuleNotFoundError:
        questions = None
    if not questions:
        return {"rows": [error_row(name, "*", "cannot tell which lesson this is: keep the file name "
                                              "NN_topic.ipynb or the notebook's course metadata")], "events": []}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    limit = int(max_output_mb * 1e6)
    with tempfile.TemporaryDirectory(prefix="grade-") as work:
        results = os.path.join(work, ".grade-results.json")
        run = run_and_grade(nb, code, timeout, limit, work, lesson, results)
        events = run.events
        if run.died_at is not None:
            # run the cells before the fatal one again, in a new kernel, then grade
            with open(path, encoding="utf-8") as f:
                nb = nbformat.read(f, as_version=4)
            again = run_and_grade(nb, [i for i in code if i < run.died_at], timeout, limit, work, lesson, results)
            events += [e for e in again.events if e not in events]
            events.append(f"graded what ran before cell {run.died_at + 1}; later answers count as not passed")
            run.graded = again.graded
        if run.graded:
            with open(results) as f:
                rows = [{"notebook": name, **row} for row in json.load(f)]
        else:
            rows = [error_row(name, q.name, "; ".join(events) or "grading did not run", q.points) for q in questions]
    note = "; ".join(events)
    for row in rows:
        if note and row["status"] != "correct":
            row["message"] = (row["message"] + " | " if row["message"] else "") + note
    return {"rows": rows, "events": events}


if __name__ == "__main__":  # the worker started by grading.batch
    spec = json.loads(sys.argv[1])
    result = grade_notebook(Path(spec["notebook"]), spec["timeout"], spec["max_output_mb"])
    with open(spec["out"], "w") as f:
        json.dump(result, f)
