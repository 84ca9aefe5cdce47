"""Facts about this machine's CPU, on Linux, macOS and Windows: one home for them.

``cpu_model()`` is the processor's name; ``cpu_has_bf16_instructions()`` says whether it computes
bfloat16 natively: ``True``/``False`` where the operating system tells, ``None`` ("unknown") where
it does not, never a guessed ``False``.

* Linux: the ``flags`` of ``/proc/cpuinfo`` (``avx512_bf16`` or ``amx_bf16`` on x86; ``bf16`` in
  the ``Features`` line on Arm);
* macOS: ``sysctl hw.optional.arm.FEAT_BF16`` (1 on Apple M2 and newer, 0 on M1; absent on Intel
  Macs and old macOS versions: unknown);
* Windows and anything else: unknown.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU's name, else what ``platform`` knows."""
    if sys.platform.startswith("linux"):
        for line in _cpuinfo().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    elif sys.platform == "darwin":
        name = _sysctl("machdep.cpu.brand_string")
        if name:
            return name
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=None)
def cpu_has_bf16_instructions() -> bool | None:
    """True when this CPU advertises native bfloat16 math; False when it says it has none; None when unknown."""
    if sys.platform.startswith("linux"):
        info = _cpuinfo()
        if not info:
            return None
        features = {word for line in info.splitlines() if line.startswith(("flags", "Features"))
                    for word in line.split(":", 1)[1].split()}
        return bool(features & {"avx512_bf16", "amx_bf16", "bf16"})
    if sys.platform == "darwin":
        value = _sysctl("hw.optional.arm.FEAT_BF16")
        return None if value is None else value == "1"
    return None
