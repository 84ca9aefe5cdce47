"""Shared pieces of the benchmark: progress log, markdown tables, the machine header."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
from pathlib import Path

import psutil
from helpers.models import repo_root

ROOT = repo_root()
MIB, GIB = 2**20, 2**30


def log(msg: str) -> None:
    """Progress goes to stderr; the report goes to stdout."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def md_table(headers: list[str], rows: list[list]) -> str:
    """A markdown table. ``None`` shows as ``–``; ``|`` and newlines in cells are escaped."""
    def cell(value) -> str:
        text = "–" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: list[float]) -> float:
    return statistics.median(values)



BF16_WORD = {True: "yes", False: "no", None: "unknown"}


def machine_header() -> list[str]:
    """Markdown bullet lines describing this machine and the libraries (from helpers.diagnostics)."""
    import torch

    from helpers.diagnostics import package_version
    from helpers.machine import cpu_has_bf16_instructions, cpu_model

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = f"{props.name} ({props.total_memory / GIB:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        gpu = "none (torch.cuda.is_available() is False)"
    versions = ", ".join(f"{p} {package_version(p)}" for p in
                         ("torch", "transformers", "accelerate", "bitsandbytes", "peft"))
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"- **Date:** {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- **CPU:** {cpu_model()}; {psutil.cpu_count(logical=True)} logical cores "
        f"({psutil.cpu_count(logical=False)} physical), {usable} usable by this process; "
        f"native bf16 instructions: {BF16_WORD[cpu_has_bf16_instructions()]}",
        f"- **torch threads:** {torch.get_num_threads()}",
        f"- **GPU:** {gpu}",
        f"- **RAM:** {psutil.virtual_memory().total / GIB:.1f} GiB",
        f"- **Python:** {platform.python_version()} on {platform.platform()}",
        f"- **Libraries:** {versions}",
        f"- **Load average (1/5/15 min) at start:** {load} (other work on the machine "
        "slows every number below)",
    ]
