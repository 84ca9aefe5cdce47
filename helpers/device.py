"""Pick a device and a dtype that the device actually supports.

``best_device()`` prefers a CUDA GPU, then Apple's MPS, then the CPU.

``best_dtype(device)`` answers "which floating-point type should I load the
weights in on this device?":

* CUDA with native bfloat16 (Ampere, compute capability 8.0, and newer: A100,
  RTX 30xx/40xx, L4, H100): ``torch.bfloat16`` - half the memory of float32,
  same exponent range, so no overflow surprises.
* older CUDA GPUs (T4 on Colab's free tier, V100: compute capability 7.x):
  ``torch.float16``. Their tensor cores do float16, not bfloat16; PyTorch can
  *emulate* bfloat16 there, so ``torch.cuda.is_bf16_supported()`` says True on a
  T4 by default. Ask ``is_bf16_supported(including_emulation=False)``, or read the
  compute capability, as this function does. float16 has a smaller range (values
  above 65504 become inf), which a model trained in bf16 can hit.
* MPS (Apple GPUs): ``torch.float16``, which every MPS device computes. bfloat16 on MPS needs
  macOS 14 or newer (torch raises "MPS BFloat16 is only supported on MacOS 14 or newer" before),
  and MPS has no float64 at all: ask :func:`dtype_works_on` before putting a dtype there.
* CPU: ``torch.float32`` - the safe default for loading. bf16 halves memory on a
  CPU; whether it is faster depends on the CPU and on the work (lesson 03
  measures prefill and decoding separately on yours).
"""

from __future__ import annotations

import platform

import torch

from .machine import cpu_has_bf16_instructions  # noqa: F401  (lesson 03 imports it from here)


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
        return torch.bfloat16 if has_native_bf16(device) else torch.float16
    if kind == "mps":
        return torch.float16
    return torch.float32


def macos_version() -> tuple[int, int] | None:
    """``(major, minor)`` of macOS, e.g. ``(14, 5)``; ``None`` on any other system."""
    release = platform.mac_ver()[0]
    if not release:
        return None
    parts = [int(p) if p.isdigit() else 0 for p in release.split(".")[:2]]
    return (parts + [0])[0], (parts + [0])[1]


def dtype_works_on(dtype: torch.dtype, device: str | torch.device | None = None) -> bool:
    """Whether tensors of ``dtype`` can be put on ``device`` (default: ``best_device()``).

    Every dtype works on the CPU and on CUDA (bfloat16 may be emulated on an old GPU, but it runs).
    On MPS: no ``float64``; ``bfloat16`` only from macOS 14 on.
    """
    kind = torch.device(device or best_device()).type
    if kind != "mps":
        return True
    if dtype == torch.float64:
        return False
    if dtype == torch.bfloat16:
        version = macos_version()
        return version is not None and version >= (14, 0)
    return True


def bitsandbytes_supports(device: str | torch.device | None = None) -> bool:
    """Whether the installed bitsandbytes lists ``device``'s type among the devices it runs on.

    bitsandbytes 0.50 lists ``cpu``, ``cuda``, ``mps`` (Apple GPUs: 4-bit through PyTorch
    fallback kernels before macOS 26), ``xpu``, ``hpu`` and ``npu``
    (``bitsandbytes.supported_torch_devices``, which transformers checks before a 4-bit load).
    Older releases had no such list and ran on CUDA only.
    """
    kind = torch.device(device or best_device()).type
    try:
        import bitsandbytes
    except ImportError:
        return False
    return kind in getattr(bitsandbytes, "supported_torch_devices", {"cuda"})


def has_native_bf16(device: str | torch.device | None = "cuda") -> bool:
    """True when this CUDA GPU computes bfloat16 natively (compute capability 8.0 or newer).

    Unlike ``torch.cuda.is_bf16_supported()`` (default ``including_emulation=True``),
    this is False on a T4 or V100, where bfloat16 only runs emulated.
    """
    if torch.version.hip:  # AMD GPUs (ROCm) that PyTorch supports all have bf16
        return True
    major, _minor = torch.cuda.get_device_capability(device)
    return major >= 8


def synchronize(device: str | torch.device | None = None) -> None:
    """Wait until ``device`` has finished its queued work (a no-op on the CPU).

    GPU kernels run asynchronously: a timer read right after a call measures only the launch.
    Call this before reading the clock.
    """
    kind = torch.device(device or best_device()).type
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


SMALL_GPU_MIB = 300  # the pretend GPU of lesson 05's out-of-memory exercise


def put_on_small_gpu(model):
    """Pretend to move ``model`` onto a GPU that has only ``SMALL_GPU_MIB`` MiB of memory.

    A simulation, so that the out-of-memory question works on any machine (running a real
    GPU out of memory needs a GPU; running the CPU out of memory could hurt the machine):
    it compares ``model.get_memory_footprint()`` with the budget. If the model does not fit,
    it raises ``torch.OutOfMemoryError``, the exception class a real CUDA out-of-memory
    error has, with a message in CUDA's format. If it fits, it returns the model unchanged
    (it stays where it is).
    """
    need, budget = model.get_memory_footprint(), SMALL_GPU_MIB * 2**20
    if need > budget:
        raise torch.OutOfMemoryError(
            f"CUDA out of memory. Tried to allocate {need / 2**20:.2f} MiB. GPU 0 has a total capacity "
            f"of {SMALL_GPU_MIB:.2f} MiB of which {SMALL_GPU_MIB:.2f} MiB is free. "
            "(pretend GPU: simulated by helpers.device.put_on_small_gpu)")
    return model
