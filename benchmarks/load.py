"""Section 2: ``from_pretrained`` in float32 and bfloat16 against a raw, page-cache-warm read of the file."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .common import MIB, ROOT, log, md_table, median

# (label, dtype, extra from_pretrained kwargs)
LOAD_VARIANTS = [
    ("`from_pretrained(path, dtype=torch.float32)`", "float32", {}),
    ("`from_pretrained(path, dtype=torch.float32, disable_mmap=True)`", "float32", {"disable_mmap": True}),
    ("`from_pretrained(path, dtype=torch.bfloat16)`", "bfloat16", {}),
]


def raw_read_seconds(path: Path) -> float:
    """Seconds to read the whole file into a new ``bytearray`` with ``readinto``."""
    size = path.stat().st_size
    start = time.perf_counter()
    buf = bytearray(size)
    with open(path, "rb", buffering=0) as f:
        view, done = memoryview(buf), 0
        while done < size:
            n = f.readinto(view[done:])
            if not n:
                raise OSError(f"{path} ended after {done} of {size} bytes")
            done += n
    seconds = time.perf_counter() - start
    del view, buf
    return seconds


def load_in_subprocess(model_dir: Path, dtype: str, kwargs: dict) -> dict:
    """One ``from_pretrained`` in a fresh Python process: ``{"load": s, "touch": s}``."""
    from helpers.child import run_json
    return run_json("benchmarks.load_child", str(model_dir), dtype, json.dumps(kwargs))


def bench_load(model_dir: Path, repeats: int) -> str:
    """Section 2: from_pretrained fp32/bf16 vs a raw page-cache-warm read of the same file."""
    weights = model_dir / "model.safetensors"
    size = weights.stat().st_size
    log(f"load: warming the page cache with a first read of {weights.name}")
    first = raw_read_seconds(weights)
    reads = [raw_read_seconds(weights) for _ in range(repeats)]
    raw = median(reads)
    rows = [["raw read (`readinto` a new bytearray)", "as stored", f"{raw:.3f}",
             ", ".join(f"{t:.3f}" for t in reads), "1.00", None, None, f"{size / raw / 1e9:.2f}",
             f"yes (the first read took {first:.3f} s)"]]
    for label, dtype, kwargs in LOAD_VARIANTS:
        log(f"load: {label}, {repeats} fresh processes")
        runs = [load_in_subprocess(model_dir, dtype, kwargs) for _ in range(repeats)]
        t = median([r["load"] for r in runs])
        touch = median([r["touch"] for r in runs])
        rows.append([label, dtype, f"{t:.3f}", ", ".join(f"{r['load']:.3f}" for r in runs),
                     f"{t / raw:.2f}", f"{touch:.3f}", f"{(t + touch) / raw:.2f}",
                     f"{size / (t + touch) / 1e9:.2f}", "yes"])
    table = md_table(["what", "weights dtype", "median load (s)", "runs (s)", "load / raw read",
                      "then first touch of every weight page (s)", "(load + touch) / raw read",
                      "file GB/s (load + touch)", "page-cache-warm"], rows)
    where = weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights
    return ("## 2. Loading the course model vs reading its file\n\n"
            f"`{where}`: {size / MIB:.0f} MiB, float32 on disk. Median of {repeats}. Each "
            "`from_pretrained` runs in a fresh subprocess (torch, transformers and the model's "
            "module imported before the timer). The file was read once before any timing, so "
            "every read and load found it in the page cache. A float32 load of a float32 file "
            "**memory-maps** it: the weights are read lazily, on first use, so the load alone "
            "can beat the raw read; the touch column (reading one element per 4 KiB page "
            "of every weight, right after the load) shows where that cost went. "
            "`disable_mmap=True` reads the file eagerly; bfloat16 must read and convert every "
            "weight during the load.\n\n" + table)
