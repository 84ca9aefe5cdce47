"""Section 6: the grader against plain execution: the solution notebooks, run by nbclient, then graded.

Both run the same notebooks (``solutions/*.ipynb``) one at a time in fresh kernels. Plain: each
executed by :func:`benchmarks.notebooks.run_notebook` (kernel start included). Graded: one
``grading.grade(paths=..., jobs=1)`` batch, the way an instructor runs it (a worker per notebook,
its limits, the leftover-process sweep and the integrity scan, then one judging process that
loads the references once). The ratio is the grader's cost on top of running the work.
"""

from __future__ import annotations

import time

from .common import ROOT, log, md_table
from .notebooks import run_notebook


def bench_grader(cell_timeout: float = 900) -> str:
    from grading import grade

    notebooks = sorted((ROOT / "solutions").glob("*.ipynb"))
    log(f"grader: {len(notebooks)} solution notebooks, plain then graded (minutes)")
    plain = {}
    for nb in notebooks:
        plain[nb.name] = run_notebook(nb, cell_timeout)["total_s"]
    start = time.perf_counter()
    rows = grade(paths=[str(nb) for nb in notebooks], timeout=cell_timeout, jobs=1)
    graded = time.perf_counter() - start
    correct = sum(r["status"] == "correct" for r in rows)
    total_plain = sum(plain.values())
    table = md_table(["run", "seconds"], [["nbclient, each notebook in a fresh kernel (sum)", f"{total_plain:.0f}"],
                                          ["`grade(..., jobs=1)`, the whole batch", f"{graded:.0f}"],
                                          ["ratio graded / plain", f"{graded / total_plain:.2f}x"]])
    return ("## 6. The grader\n\n"
            f"The {len(notebooks)} solution notebooks, run plainly and then graded in one batch "
            f"({correct}/{len(rows)} questions correct):\n\n" + table)
