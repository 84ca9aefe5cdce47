"""Grade many notebooks: each in its own worker process (``python -m grading.notebook``), ``jobs`` at a time."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .report import error_row


def find_notebooks(paths) -> list[Path]:
    """Every ``.ipynb`` under ``paths`` (files or folders), sorted; checkpoints left out."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(x for x in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in x.parts)
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return found


def grade_in_subprocess(path: Path, timeout: float, max_output_mb: float, sandbox: bool = False) -> dict:
    """Grade one notebook in a worker process; the result comes back on the worker's standard output."""
    spec = {"notebook": str(path), "timeout": timeout, "max_output_mb": max_output_mb, "sandbox": sandbox}
    # -P: the folder the instructor runs this from is not on the worker's import path
    proc = subprocess.Popen([sys.executable, "-P", "-m", "grading.notebook", json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # the worker enforces the notebook's own time limits; this is the backstop for the worker itself
        out, err = proc.communicate(timeout=timeout * 200 + 1800)
        return json.loads(out.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        msg = "the grading worker for this notebook hung and was stopped"
    except (ValueError, IndexError):
        msg = f"the grading process failed: {(err or '').strip()[-300:]}"
    return {"rows": [error_row(str(path), "*", msg)], "events": [msg]}


def grade(paths, timeout: float = 120, jobs: int = 1, max_output_mb: float = 1.0, sandbox: bool = False) -> list[dict]:
    """Grade every notebook under ``paths``; returns all report rows.

    If the course's files changed while a notebook ran (see :mod:`grading.integrity`), the
    notebooks not yet started are not graded: their rows say why.
    """
    from .notebook import TAMPERED

    notebooks = find_notebooks(paths)
    stop = threading.Event()

    def one(p):
        if stop.is_set():
            msg = "not graded: the course's files changed while an earlier notebook ran (see its row)"
            return {"rows": [error_row(str(p), "*", msg)], "events": [msg]}
        result = grade_in_subprocess(p, timeout, max_output_mb, sandbox)
        if TAMPERED in result["events"]:
            stop.set()
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, notebooks))
    return [row for r in results for row in r["rows"]]
