"""Run a measurement in a fresh Python process and read back its JSON: one home for that pattern.

A load or memory measurement runs in a new process so nothing of the calling one (allocator state,
mapped pages, modules already imported) flatters it. The child prints one JSON value as the last
line of its standard output; :func:`run_json` returns it, or raises with the end of the child's
error output. (The grader's worker and judge do not use this: their results travel on channels a
submission cannot write, see grading/batch.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_json(module: str, *args: str, timeout: float = 900, env: dict | None = None):
    """``python -m module args...``; the JSON value on the last line of its output."""
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the measuring process ({module}) failed:\n{proc.stderr[-1500:]}")
    return json.loads(lines[-1])
