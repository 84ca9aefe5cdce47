"""Section 5: the pytest run of ``make test``, timed: wall time, summary, the ten slowest tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from .common import ROOT, log, md_table

def bench_tests() -> str:
    """Section 5: the pytest run of ``make test`` (warm: venv and models present), timed."""
    cmd = [sys.executable, "-m", "pytest", "-n", "auto", "--dist", "loadfile", "--durations=10", "-q"]
    log("tests: " + " ".join(cmd[1:]) + " (minutes)")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=3600)
    seconds = time.perf_counter() - start
    lines = proc.stdout.splitlines()
    slowest = []
    for i, line in enumerate(lines):
        if "slowest 10 durations" in line:
            slowest = [m.groups() for m in (re.match(r"^(\d+\.\d+)s (\w+)\s+(\S+)", x) for x in lines[i + 1:i + 11]) if m]
    summary = next((x.strip("= ") for x in reversed(lines) if " passed" in x or " failed" in x), "no summary")
    table = md_table(["seconds", "phase", "test"], [[sec, phase, f"`{name}`"] for sec, phase, name in slowest])
    return ("## 5. The test suite\n\n"
            f"`{' '.join(['pytest'] + cmd[3:])}` with `OMP_NUM_THREADS=1`, as `make test` runs it after the "
            f"set-up: **{seconds:.0f} s** wall time, exit code {proc.returncode}: {summary}. "
            "The ten slowest tests:\n\n" + table)
