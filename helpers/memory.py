"""What loading a model costs in memory, measured in a fresh process: ``load_memory(path, ...)``.

Each call starts a new Python process (``python -m helpers.memory``), imports torch and
transformers, and only then starts measuring, so nothing left over from an earlier load in the
notebook can hide or inflate a number. A thread samples the process every 2 ms while it runs
``AutoModelForCausalLM.from_pretrained(path, **kwargs)`` (then ``.to(cast_to)``, if asked), and
again while it runs one forward pass (if ``forward=True``). Three numbers per step, in MiB above
what the process used before the step:

* **RSS** - everything resident, including pages of the weights *file* mapped into memory
  (``mmap``): the kernel can drop and re-read those, and processes that map the same file share them;
* **private** (Linux only, else None) - RSS minus file-backed pages: memory that belongs to this
  process alone, such as a converted copy of the weights. This is what runs out;
* **GPU peak** - ``torch.cuda.max_memory_allocated()``, when the step uses CUDA (``device_map``
  or ``cast_to`` names it); else None.

One process at a time: running several side by side would make their peaks add up.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass

MIB = 2**20


@dataclass
class MemoryUse:
    """Growth in MiB during one step (a load, or a forward pass); ``private`` is None off Linux."""

    peak_rss: float
    peak_private: float | None
    end_private: float | None
    gpu_peak: float | None = None

    def __str__(self) -> str:
        private = "n/a" if self.peak_private is None else f"+{self.peak_private:.0f}"
        after = "n/a" if self.end_private is None else f"+{self.end_private:.0f}"
        gpu = "" if self.gpu_peak is None else f", GPU peak {self.gpu_peak:.0f}"
        return f"peak RSS +{self.peak_rss:.0f}, peak private {private}, private after {after} MiB{gpu}"


def load_memory(path: str, cast_to=None, forward: bool = False, **kwargs) -> dict[str, MemoryUse]:
    """Measure ``from_pretrained(path, **kwargs)`` in a fresh process: ``{"load": ..., "forward": ...}``.

    ``kwargs`` go to ``from_pretrained`` (``dtype=torch.bfloat16``, ``device_map="cuda"``,
    ``disable_mmap=True``, ...); ``cast_to`` (a torch dtype or device string) is applied with
    ``.to()`` right after the load and counts as part of it; ``forward=True`` adds a step: one
    forward pass on three tokens.
    """
    release_memory()  # the notebook's freed memory, given back, does not add to the child's peak
    spec = {"path": str(path), "cast_to": None if cast_to is None else str(cast_to), "forward": forward,
            "kwargs": {k: str(v) if not isinstance(v, (bool, int, float, type(None))) else v
                       for k, v in kwargs.items()}}
    from .child import run_json
    steps = run_json("helpers.memory", json.dumps(spec), timeout=600, env={"HF_HUB_OFFLINE": "1"})
    return {name: MemoryUse(**values) for name, values in steps.items()}


def release_memory() -> None:
    """Hand memory back after ``del model``: collect garbage, empty the CUDA cache, trim the C heap.

    ``del`` only removes a name; ``gc.collect()`` frees the objects nothing refers to any more.
    The C allocator (glibc on Linux) keeps freed blocks for reuse, so the process still *looks*
    as big as before; ``malloc_trim(0)`` returns them to the system. Loading a 4-bit model from a
    float32 checkpoint leaves a few hundred MB of such blocks (lesson 06 measured it).
    """
    import ctypes
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        pass


# --------------------------------------------------------------------------- the child process

def _as_torch(value):
    """'torch.bfloat16' -> torch.bfloat16; anything else unchanged."""
    from .dtypes import parse_dtype
    return parse_dtype(value) if isinstance(value, str) and value.startswith("torch.") else value


def _now(proc) -> tuple[int, int | None]:
    info = proc.memory_info()
    shared = getattr(info, "shared", None)  # file-backed resident pages (Linux)
    return info.rss, None if shared is None else info.rss - shared


class PeakSampler(threading.Thread):
    """Calls ``read()`` every ``interval`` seconds from a thread and keeps the element-wise peak of
    the tuples it returns (``None`` stays ``None``). A spike shorter than ``interval`` can be missed.
    ``with PeakSampler(read, 0.002) as s: ...`` then ``s.peak``. Also used by the benchmark."""

    def __init__(self, read, interval: float):
        super().__init__(daemon=True)
        self.read, self.interval, self._done = read, interval, threading.Event()
        self.peak = list(read())

    def run(self) -> None:
        while not self._done.is_set():
            try:
                now = self.read()
            except Exception:  # noqa: BLE001 - the process went away: the peak so far stands
                return
            self.peak = [None if p is None or v is None else max(p, v) for p, v in zip(self.peak, now)]
            self._done.wait(self.interval)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()


def _measure(proc, step, cuda: bool) -> dict:
    import torch
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    base = _now(proc)
    with PeakSampler(lambda: _now(proc), 0.002) as sampler:
        step()
        time.sleep(0.01)
    peak, end = sampler.peak, _now(proc)
    no_private = base[1] is None
    return {"peak_rss": (peak[0] - base[0]) / MIB,
            "peak_private": None if no_private else (peak[1] - base[1]) / MIB,
            "end_private": None if no_private else (end[1] - base[1]) / MIB,
            "gpu_peak": torch.cuda.max_memory_allocated() / MIB if cuda else None}


def _child(spec: dict) -> dict:
    import psutil
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(spec["path"]))]  # import the model's code first
    proc, kwargs, holder = psutil.Process(), {k: _as_torch(v) for k, v in spec["kwargs"].items()}, {}

    def load():
        holder["model"] = AutoModelForCausalLM.from_pretrained(spec["path"], **kwargs)
        if spec["cast_to"]:
            holder["model"].to(_as_torch(spec["cast_to"]))

    def forward():
        model = holder["model"]
        with torch.no_grad():
            model(torch.tensor([[1, 2, 3]], device=model.device))

    # CUDA is initialised (seconds) only when the step puts something on the GPU
    cuda = "cuda" in json.dumps(spec["kwargs"]) + str(spec["cast_to"])
    steps = {"load": _measure(proc, load, cuda)}
    if spec["forward"]:
        steps["forward"] = _measure(proc, forward, cuda)
    return steps


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
