"""Grade many notebooks: each in its own worker process (``python -m grading.notebook``), ``jobs`` at a time."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
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


def grade_in_subprocess(path: Path, timeout: float, max_output_mb: float) -> dict:
    """Grade one notebook in a worker process, with an overall time limit."""
    import nbformat
    try:
        n_cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
    except Exception:
        n_cells = 1
    overall = timeout * (n_cells + 3) + 120
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = out.name
    spec = {"notebook": str(path), "timeout": timeout, "max_output_mb": max_output_mb, "out": out_path}
    proc = None
    try:
        proc = subprocess.run([sys.executable, "-m", "grading.notebook", json.dumps(spec)],
                              capture_output=True, text=True, timeout=overall)
        with open(out_path) as f:
            return json.load(f)
    except subprocess.TimeoutExpired:
        msg = f"grading this notebook took over {overall:g} s and was stopped"
    except (OSError, ValueError):
        msg = f"the grading process failed: {((proc and proc.stderr) or '').strip()[-300:]}"
    finally:
        if os.path.exists(out_path):
            os.unlink(out_path)
    return {"rows": [error_row(str(path), "*", msg)], "events": [msg]}


def grade(paths, timeout: float = 120, jobs: int = 1, max_output_mb: float = 1.0) -> list[dict]:
    """Grade every notebook under ``paths``; returns all report rows."""
    notebooks = find_notebooks(paths)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda p: grade_in_subprocess(p, timeout, max_output_mb), notebooks))
    return [row for r in results for row in r["rows"]]
