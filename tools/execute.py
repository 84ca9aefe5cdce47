"""Execute notebooks in place, as an author stores their outputs: ``make execute NB="notebooks/03_dtypes.ipynb"``.

Each notebook runs top to bottom in a fresh ``python3`` kernel (working directory: its folder,
``HF_HUB_OFFLINE=1``, no progress bars) and, if every cell ran, is written back with its outputs.
Prints the wall time and the peak RSS of the kernel and its children, the two numbers the
course's per-notebook budget is about (60 s and 2 GiB on a 2-core CPU). Run it on an idle
machine: the stored outputs are what learners read, timings included.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.notebooks import run_notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--no-save", action="store_true", help="measure only; write nothing")
    parser.add_argument("--cell-timeout", type=float, default=600)
    args = parser.parse_args(argv)
    failed = 0
    for path in args.notebooks:
        r = run_notebook(path, args.cell_timeout, save=not args.no_save)
        saved = "saved" if r["status"] == "ok" and not args.no_save else "not saved"
        print(f"{path}: {r['status']} in {r['total_s']:.1f} s, peak RSS {r['peak_mib'] or 0:.0f} MiB, {saved}"
              + (f"; {r['error']}" if r["error"] else ""), flush=True)
        failed += r["status"] != "ok"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
