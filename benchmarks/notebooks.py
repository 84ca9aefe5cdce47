"""Section 1: every notebook in a fresh kernel (wall time, peak RSS); also ``run_notebook`` for ``make execute``."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import psutil

from helpers.memory import PeakSampler

from .common import MIB, ROOT, log, md_table

KERNEL_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
              "COURSE_PROGRESS_FILE": ""}  # an author's runs are not learner progress


def tree_rss(pid: int) -> tuple[int]:
    """The resident memory of a process and its children, summed (a kernel and what it started)."""
    process, total = psutil.Process(pid), 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return (total,)


def run_notebook(path: Path, cell_timeout: float = 900, save: bool = False) -> dict:
    """Execute ``path`` in a fresh kernel. Returns times, peak memory, status.

    ``save=True`` writes the executed notebook (outputs included) back to ``path`` when
    every cell ran (``make execute``); otherwise nothing is written.
    """
    import nbformat
    from nbclient import NotebookClient

    with open(path, encoding="utf-8") as f:
        nb = nbformat.read(f, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=cell_timeout, allow_errors=False,
                            startup_timeout=120, resources={"metadata": {"path": str(path.parent)}})
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    result = {"status": "ok", "error": None, "cells": len(code)}
    start = time.perf_counter()
    monitor = None
    try:
        with client.setup_kernel(env={**os.environ, **KERNEL_ENV}):
            pid = client.km.provisioner.process.pid
            monitor = PeakSampler(lambda: tree_rss(pid), 0.05)
            monitor.start()
            ready = time.perf_counter()
            for n, i in enumerate(code, 1):
                try:
                    client.execute_cell(nb.cells[i], i)
                except Exception as e:
                    ename = getattr(e, "ename", type(e).__name__)
                    evalue = getattr(e, "evalue", str(e)).strip().splitlines()
                    result.update(status="failed",
                                  error=f"code cell {n}/{len(code)}: {ename}: {(evalue or [''])[0][:160]}")
                    break
            result["cells_s"] = time.perf_counter() - ready
    except Exception as e:  # the kernel did not start, or died
        result.update(status="failed", error=f"{type(e).__name__}: {str(e)[:160]}")
    result["total_s"] = time.perf_counter() - start
    if monitor:
        monitor.__exit__()
    result["peak_mib"] = monitor.peak[0] / MIB if monitor else None
    if save and result["status"] == "ok":
        nbformat.write(nb, path)
    return result


def expected_notebooks() -> set[str]:
    """Notebooks the README's course map links to (exercises/ stands for solutions/)."""
    readme = ROOT / "README.md"
    if not readme.is_file():
        return set()
    links = re.findall(r"\]\(((?:notebooks|exercises)/\d\d_\w+\.ipynb)\)", readme.read_text())
    return {link.replace("exercises/", "solutions/") for link in links}


def bench_notebooks(cell_timeout: float) -> str:
    """Section 1: run every notebook of notebooks/ and solutions/; one row each."""
    found = {str(p.relative_to(ROOT)) for folder in ("notebooks", "solutions")
             for p in (ROOT / folder).glob("*.ipynb")}
    rows = []
    for rel in sorted(found | expected_notebooks()):
        if rel not in found:
            rows.append([rel, "missing", None, None, None, None, "linked from README.md, not on disk"])
            continue
        log(f"notebook {rel}")
        r = run_notebook(ROOT / rel, cell_timeout)
        log(f"  {r['status']} in {r['total_s']:.1f} s" + (f": {r['error']}" if r["error"] else ""))
        rows.append([rel, r["status"], r["cells"], f"{r['total_s']:.1f}",
                     f"{r['cells_s']:.1f}" if "cells_s" in r else None,
                     f"{r['peak_mib']:.0f}" if r["peak_mib"] else None, r["error"]])
    table = md_table(["notebook", "status", "code cells", "wall time incl. kernel start (s)",
                      "cells only (s)", "peak kernel RSS (MiB)", "error"], rows)
    return ("## 1. Notebooks, each in a fresh kernel\n\n"
            "Executed top to bottom with nbclient (kernel `python3`, working directory = the "
            "notebook's folder, `HF_HUB_OFFLINE=1`); nothing is written back. Peak RSS: the "
            "kernel process and its children, summed, polled at 20 Hz.\n\n" + table)
