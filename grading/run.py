"""Run a submitted notebook and save its answers: ``python -m grading.run SPEC_JSON`` (stage 1 of 2).

Runs every code cell top to bottom in a fresh kernel with nbclient, in the submission's own
working folder, with a per-cell timeout (a cell that runs too long is interrupted) and a cap on
the output kept; then the extraction cell (:mod:`grading.extract`) saves the answers as data.
If the kernel dies (``os._exit``, a crash), the cells before the fatal one run again in a new
kernel and their answers are saved; later answers are missing. Prints what happened (``events``)
as the last line of its output: informative only, never a verdict or a control (a submission can
write there too).

This process and the kernel are what :mod:`grading.sandbox` confines; they decide nothing.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from nbclient import NotebookClient

from helpers.colab import MARKER as COLAB_MARKER

from .extract import EXTRACT_CODE


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
    """What happened when the cells ran: ``events`` to report, where the kernel died, whether answers were saved."""

    events: list[str] = field(default_factory=list)
    died_at: int | None = None
    extracted: bool = False


def _settle(client) -> None:
    """After a timeout, let the interrupt land on a throwaway cell, not on the next real one."""
    from nbformat.v4 import new_code_cell
    try:
        client.execute_cell(new_code_cell("import time as _t; _t.sleep(1)"), 0, store_history=False)
    except Exception:
        pass


def run_and_extract(nb, indices, timeout, max_output_bytes, workdir, lesson, answers) -> Run:
    """Run the code cells ``indices`` in a fresh kernel, then the extraction cell."""
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
        extract = new_code_cell(EXTRACT_CODE.format(folder=answers, lesson=lesson))
        nb.cells.append(extract)
        client.timeout = max(timeout, 300)
        errors.clear()
        try:
            client.execute_cell(extract, len(nb.cells) - 1)
        except DeadKernelError:
            run.events.append("the kernel died while its answers were saved")
            return run
        if errors:
            run.events.append(f"saving the answers failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
        run.extracted = not errors
    return run


def run_notebook(path: str, workdir: str, answers: str, lesson: str, timeout: float, max_output_mb: float) -> list:
    """Stage 1 for one notebook; returns the events."""
    import nbformat

    with open(path, encoding="utf-8") as f:
        nb = nbformat.read(f, as_version=4)
    # the Colab set-up cell (helpers/colab.py) is left out: it installs, it answers nothing
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.source.startswith(COLAB_MARKER)]
    limit = int(max_output_mb * 1e6)
    run = run_and_extract(nb, code, timeout, limit, workdir, lesson, answers)
    events = run.events
    if run.died_at is not None:
        # run the cells before the fatal one again, in a new kernel, then save the answers
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
        again = run_and_extract(nb, [i for i in code if i < run.died_at], timeout, limit, workdir, lesson, answers)
        events += [e for e in again.events if e not in events]
        events.append(f"graded what ran before cell {run.died_at + 1}; later answers count as not passed")
    return events


if __name__ == "__main__":  # started by grading.worker, perhaps inside the sandbox
    spec = json.loads(sys.argv[1])
    events = run_notebook(spec["notebook"], spec["workdir"], spec["answers"], spec["lesson"], spec["timeout"],
                          spec["max_output_mb"])
    sys.stdout.write("\n" + json.dumps(events) + "\n")
