"""Benchmark the course on this machine: ``python -m benchmarks`` (``make bench``).

One module per section: ``notebooks``, ``load`` (+ its child process ``load_child``),
``decode``, ``setup_time``, ``suite``; shared pieces in ``common``.

Writes ``BENCHMARK.md`` at the repository root and prints the same markdown.
The header says what machine it ran on (CPU, cores, torch threads, GPU, RAM,
library versions, date, load average). Six sections:

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
3. **Decoding.** Greedy ``generate`` at batch 1 on the CPU in float32, bfloat16 and
   4-bit NF4 (bitsandbytes, compute dtype bf16 and fp32; what it does not quantize keeps the
   checkpoint's float32), exactly N new tokens (``--new-tokens``, 64), measured with
   :func:`helpers.speed.decode_speed` (the lessons' own measurement: one warm-up, then the
   best of ``--repeats`` runs; a streamer notes when each step's token is ready, so the
   prefill is left out of the decode rate). The roofline: decoding one token must read
   every weight once, so tokens/s <= read bandwidth / weight bytes per token
   (:func:`helpers.speed.bytes_per_token`). The bandwidth is measured in the same process
   with the same torch thread count: the best of several sums of a 1 GiB float32 tensor.
   KV-cache reads and activations are left out, so the roofline is an upper bound.
4. **Set-up.** A cold ``make setup`` (the files git would commit, copied with
   ``git ls-files`` into a temp folder; a new ``.venv``; ``COURSE_MODELS_DIR``
   an empty temp folder, so the course models are downloaded and built again),
   then the same command again (warm). pip's configured indexes and its cache
   are used as they are (and not printed). Slow (minutes): ``--skip-setup`` leaves it out.
5. **Tests.** The pytest run of ``make test`` (every core, one thread per
   process), timed: wall time, the summary line and the ten slowest tests
   (``--durations=10``). Slow (minutes).
6. **Grader.** The solution notebooks run plainly by nbclient, then graded in one batch
   (``grading.grade(jobs=1)``): both times and their ratio (:mod:`benchmarks.grader`).

``--only notebooks|load|decode|setup|tests`` (repeatable) runs some sections; such a
partial run writes ``.bench/BENCHMARK.md`` (git-ignored) unless ``--out`` says
otherwise, so it never overwrites the full report. Nothing here asserts a
speed: the numbers are measurements of this machine, at this moment.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported anywhere below
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .common import ROOT, log, machine_header  # noqa: E402
from .decode import bench_decode  # noqa: E402
from .grader import bench_grader  # noqa: E402
from .load import bench_load  # noqa: E402
from .notebooks import bench_notebooks  # noqa: E402
from .setup_time import bench_setup  # noqa: E402
from .suite import bench_tests  # noqa: E402

SECTIONS = ("notebooks", "load", "decode", "setup", "tests", "grader")


REPRODUCE = """## How to reproduce

```bash
make bench                                  # = make setup, then python -m benchmarks
.venv/bin/python -m benchmarks --skip-setup        # leave out the slow cold/warm make setup
.venv/bin/python -m benchmarks --only tests        # the test suite alone: wall time, 10 slowest tests
.venv/bin/python -m benchmarks --only decode       # one section (repeatable); writes .bench/BENCHMARK.md
```

Close other programs first: every number here is a wall-clock measurement on a shared CPU.
The method of each section is described in the docstring of `benchmarks/__main__.py`."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="run only this section (repeatable)")
    parser.add_argument("--skip-setup", action="store_true", help="leave out the cold/warm make setup")
    parser.add_argument("--out", help="markdown file to write (default: BENCHMARK.md; "
                                      ".bench/BENCHMARK.md with --only)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens per timed generate")
    parser.add_argument("--cell-timeout", type=float, default=900, help="seconds per notebook cell")
    args = parser.parse_args(argv)

    sections = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    if args.skip_setup and "setup" in sections:
        sections.remove("setup")
    out = Path(args.out) if args.out else ROOT / (".bench/BENCHMARK.md" if args.only else "BENCHMARK.md")

    from helpers.models import CourseSetupError, resolve_model

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
        "grader": lambda: bench_grader(args.cell_timeout),
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
