"""Pick a device and a dtype that the device actually supports.

``best_device()`` prefers a CUDA GPU, then Apple's MPS, then the CPU.

``best_dtype(device)`` answers "which floating-point type should I load the
weights in on this device?":

* CUDA with bfloat16 support (Ampere, compute capability 8.0, and newer):
  ``torch.bfloat16`` - half the memory of float32, same exponent range, so no
  overflow surprises.
* older CUDA GPUs (no bf16): ``torch.float16`` - half the memory, but a
  smaller range (values above 65504 become inf).
* MPS: ``torch.float16``.
* CPU: ``torch.float32`` - the safe default. bf16 on a CPU halves memory, but
  is only fast on CPUs with bf16 instructions (lesson 03 measures it).
"""

from __future__ import annotations

import torch


def best_device() -> str:
    """Return ``"cuda"``, ``"mps"`` or ``"cpu"``: the fastest device present."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def best_dtype(device: str | torch.device | None = None) -> torch.dtype:
    """Return the dtype to load weights in on ``device`` (default: ``best_device()``)."""
    kind = torch.device(device or best_device()).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "mps":
        return torch.float16
    return torch.float32


def cpu_has_bf16_instructions() -> bool:
    """True when this CPU advertises native bf16 math (avx512_bf16 or AMX; Linux only)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
