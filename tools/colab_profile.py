"""The Colab profile: ``make test-colab`` (= ``python tools/colab_profile.py``).

A stand-in for a Colab runtime on this machine, and the course run in it as a Colab learner runs it:

1. **The runtime.** ``build/colab-env``: a venv on Python 3.13 (Colab's) with Colab's published
   versions (``tools/colab/versions.txt``: torch 2.11.0, numpy 2.1.3, transformers 5.15.0,
   ipykernel 6.17.1, ipywidgets 7.7.1, jupyter_client 7.4.9, notebook 6.5.7, ...) and a stub
   ``google.colab`` package on its path, so that the notebooks' first cell believes it is on Colab.
   Built once (minutes: torch's PyPI wheel is the CUDA build, with GBs of NVIDIA wheels; on a
   machine without a GPU it runs on the CPU); every later run first puts the env back to exactly
   those versions (what a fresh Colab runtime has), removing what the previous run installed.
2. **The first cell.** A fresh copy of this checkout (tracked and untracked files, as a clone would
   have them, without models) stands in for the ``git clone``: ``COURSE_SOURCE`` points the cell at
   it. The cell runs in a kernel of the env, as on Colab: it installs the course and what Colab lacks
   and builds the models offline (the GGUF comes from PyPI). Then torch, numpy, ipykernel, ipython,
   ipywidgets, jupyter_client and notebook must be at the versions they had.
3. **Every lesson and every solution notebook**, top to bottom, each in a fresh kernel of the env,
   in an empty working folder (Colab's ``/content``), with nbclient 0.10.4 (Colab's). The bar: no
   cell ends in an error. Cells marked ``# NBVAL_CHECK_OUTPUT`` are compared with their stored
   outputs (masked as ``tests/sanitize.cfg`` masks them) and every difference is reported (library
   versions may change them), not failed.

Prints a report (also written to ``build/colab-profile/report.md``) with the set-up and run times;
exits non-zero when a notebook errs or a kept package moved.

    python3 tools/colab_profile.py [--python PYTHON3.13] [--only 02_generation ...]

Only the standard library on this side (any Python 3.10+); the notebooks run in the env.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "tools" / "colab" / "versions.txt"
KEPT = ("torch", "numpy", "ipykernel", "ipython", "ipywidgets", "jupyter-client", "notebook")
CHECK = "# NBVAL_CHECK_OUTPUT"
LIST_DISTS = ("import importlib.metadata as m, json; d = {}\n"
              "for x in m.distributions(): d.setdefault(x.metadata['Name'].lower().replace('_', '-'), x.version)\n"
              "print(json.dumps(d))")


def log(msg: str) -> None:
    print(f"[colab-profile] {msg}", flush=True)


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def dists(python: Path) -> dict[str, str]:
    # -I: not the current folder's *.egg-info (a checkout with an editable install has one)
    out = run([python, "-I", "-c", LIST_DISTS], capture_output=True, text=True).stdout
    return json.loads(out)


def find_python(requested: str | None) -> str:
    candidates = [requested] if requested else [
        shutil.which("python3.13"), os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python3")]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    sys.exit("No Python 3.13 found (Colab's). Fix: install one (pyenv install 3.13) and pass "
             "--python /path/to/python3.13, or make test-colab COLAB_PYTHON=/path/to/python3.13.")


# --------------------------------------------------------------------------- 1. the runtime

def ensure_env(env: Path, python: str) -> tuple[Path, float | None]:
    """Create the env once; later, put it back to the recorded base. Returns (its python, set-up s)."""
    py, base_file = env / "bin" / "python", env / ".colab-base.json"
    pip = [py, "-I", "-m", "pip", "--disable-pip-version-check"]
    if not base_file.is_file():
        start = time.monotonic()
        log(f"creating {env} with {python} and Colab's versions ({VERSIONS.relative_to(ROOT)}); once, minutes")
        shutil.rmtree(env, ignore_errors=True)
        run([python, "-m", "venv", env])
        run([*pip, "install", "--quiet", "-r", VERSIONS])
        stub = env / "colab-stub" / "google" / "colab"
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab (tools/colab_profile.py)."""\n')
        site = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   capture_output=True, text=True).stdout.strip()
        (Path(site) / "colab-stub.pth").write_text(str(env / "colab-stub") + "\n")
        base_file.write_text(json.dumps(dists(py), indent=1, sort_keys=True))
        return py, time.monotonic() - start
    base, now = json.loads(base_file.read_text()), dists(py)
    extra = sorted(set(now) - set(base))
    moved = sorted(n for n in base if now.get(n) != base[n])
    if extra:
        log(f"removing what the last run installed: {', '.join(extra)}")
        run([*pip, "uninstall", "--quiet", "--yes", *extra])
    if moved:
        log(f"restoring Colab's versions of: {', '.join(moved)}")
        run([*pip, "install", "--quiet", "--no-deps", *(f"{n}=={base[n]}" for n in moved)])
    if dists(py) != base:
        sys.exit(f"could not put {env} back to its base versions; remove it and run again")
    return py, None


def fresh_course(dest: Path, ref: str | None = None) -> None:
    """This checkout as a clone would have it: tracked and untracked files that git does not ignore
    (or, with ``ref``, that commit's files only)."""
    shutil.rmtree(dest, ignore_errors=True)
    if ref:
        dest.mkdir(parents=True)
        archive = run(["git", "-C", ROOT, "archive", "--format=tar", ref], capture_output=True).stdout
        run(["tar", "-x", "-C", dest], input=archive)
        return
    files = run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


# --------------------------------------------------------------------------- 2 and 3, in the env

def execute(spec: dict) -> None:
    """Run in the env's Python: execute each notebook in a fresh kernel, write what happened as JSON."""
    import nbformat
    from nbclient import NotebookClient

    results = []
    for path in spec["notebooks"]:
        nb = nbformat.read(path, as_version=4)
        start = time.monotonic()
        client = NotebookClient(nb, timeout=spec["timeout"], kernel_name="python3", allow_errors=True,
                                startup_timeout=120, resources={"metadata": {"path": spec["cwd"]}})
        failure = None
        try:
            client.execute()
        except Exception as e:  # a dead kernel or a timeout: the notebook did not finish
            failure = f"{type(e).__name__}: {str(e)[-500:]}"
        errors = [(i, o.get("ename", ""), str(o.get("evalue", ""))[:300])
                  for i, c in enumerate(nb.cells) if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        print(f"[colab-profile]   {Path(path).parent.name}/{Path(path).name}: {time.monotonic() - start:.0f} s, "
              f"{'did not finish' if failure else f'{len(errors)} cells with errors'}", flush=True)
        results.append({"path": path, "seconds": time.monotonic() - start, "failure": failure,
                        "errors": errors, "outputs": {i: c.get("outputs", []) for i, c in enumerate(nb.cells)
                                                      if c.cell_type == "code"}})
    Path(spec["out"]).write_text(json.dumps(results))


def run_in_env(py: Path, notebooks: list[Path], cwd: Path, env: dict, out: Path, timeout: int = 900) -> list:
    spec = {"notebooks": [str(p) for p in notebooks], "cwd": str(cwd), "out": str(out), "timeout": timeout}
    run([py, __file__, "--execute", json.dumps(spec)], env=env, cwd=cwd)
    return json.loads(out.read_text())


# --------------------------------------------------------------------------- comparing checked outputs

def cells(path: Path) -> list[dict]:
    """A notebook's cells, sources joined (plain JSON: this side of the profile needs no nbformat)."""
    found = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    for c in found:
        c["source"] = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    return found


def sanitizers() -> list[tuple[re.Pattern, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def text_of(outputs: list, masks) -> str:
    """A cell's outputs as one text, consecutive stream outputs of one name joined (as nbval does)."""
    parts, stream = [], None
    for o in outputs:
        kind = o.get("output_type")
        if kind == "stream" and stream == o.get("name"):
            parts[-1] += "".join(o.get("text", ""))
            continue
        stream = o.get("name") if kind == "stream" else None
        if kind == "stream":
            parts.append(f"[{o.get('name')}] " + "".join(o.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            parts.append("".join(o.get("data", {}).get("text/plain", "")))
        elif kind == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}")
    text = "\n".join(parts)
    for regex, replace in masks:
        text = regex.sub(replace, text)
    return text


def first_difference(expected: str, got: str) -> str:
    a, b = expected.splitlines(), got.splitlines()
    n = next((i for i, (x, y) in enumerate(zip(a + [""] * len(b), b + [""] * len(a))) if x != y), None)
    if n is None:
        return "(whitespace)"
    line = lambda lines: repr(lines[n].strip()[:110]) if n < len(lines) else "(no such line)"
    return f"line {n + 1}: stored {line(a)}\n      colab  {line(b)}"


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", help="Python 3.13 to build the env with (default: python3.13 or pyenv's 3.13.0)")
    parser.add_argument("--env", default=str(ROOT / "build" / "colab-env"))
    parser.add_argument("--work", default=str(ROOT / "build" / "colab-profile"))
    parser.add_argument("--only", nargs="*", help="notebook stems to run (default: every lesson and solution)")
    parser.add_argument("--ref", help="run a commit (e.g. HEAD) instead of the working tree")
    parser.add_argument("--execute", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute:
        execute(json.loads(args.execute))
        return 0

    t0 = time.monotonic()
    env_dir, work = Path(args.env).resolve(), Path(args.work).resolve()
    py, created = ensure_env(env_dir, find_python(args.python))
    base = json.loads((env_dir / ".colab-base.json").read_text())
    course, content = work / "course", work / "content"
    fresh_course(course, args.ref)
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(COURSE_SOURCE=str(course), HF_HUB_OFFLINE="1",  # this machine has no Hub (Colab has)
               COURSE_PROGRESS_FILE="", PYDEVD_DISABLE_FILE_VALIDATION="1",
               # as under `make test` (conftest.py), so that checked outputs compare like for like
               HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false",
               PIP_CONFIG_FILE=os.devnull,  # Colab has no pip config; this machine's names local indexes
               PATH=f"{py.parent}{os.pathsep}{env.get('PATH', '')}")
    report = [f"# Colab profile ({time.strftime('%Y-%m-%d %H:%M')})", ""]
    restore_s = time.monotonic() - t0

    # 2. the first cell, as a learner runs it
    first = next(c for c in cells(course / "notebooks" / "00_environment_check.ipynb") if c["cell_type"] == "code")
    probe = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [], "execution_count": None, "source": src}
        for i, src in enumerate([first["source"], "import sys, helpers\nprint('kernel:', sys.executable)\n"
                                 "print('helpers from:', helpers.__file__)"])]}
    (work / "first-cell.ipynb").write_text(json.dumps(probe))
    log("running the first cell in a kernel of the env (installs the course, builds the models)")
    (cell_run,) = run_in_env(py, [work / "first-cell.ipynb"], content, env, work / "first-cell.json")
    printed = text_of(cell_run["outputs"]["0"], [])
    after = dists(py)
    moved = {n: (base.get(n), after.get(n)) for n in KEPT if base.get(n) != after.get(n)}
    added = {n: (base.get(n), v) for n, v in after.items() if base.get(n) != v}
    kernel = text_of(cell_run["outputs"]["1"], [])
    ok = not cell_run["errors"] and not cell_run["failure"] and not moved and str(py.parent) in kernel \
        and str(course) in kernel
    report += ["## The first cell", "",
               f"* ran in {cell_run['seconds']:.0f} s: {'ok' if ok else 'FAILED'}",
               f"* kept as they were: " + ", ".join(f"{n} {after.get(n)}" for n in KEPT) if not moved
               else f"* MOVED: {moved}",
               "* installed or changed: " + ", ".join(f"{n} {a or '-'} -> {b}" for n, (a, b) in sorted(added.items())),
               "", "```", printed.strip(), kernel.strip(), "```", ""]
    if cell_run["errors"] or cell_run["failure"]:
        report.append(f"errors: {cell_run['errors']} {cell_run['failure']}")

    # 3. every lesson and solution
    notebooks = sorted((course / "notebooks").glob("[0-9][0-9]*.ipynb")) + \
        sorted((course / "solutions").glob("[0-9][0-9]*.ipynb"))
    if args.only:
        notebooks = [p for p in notebooks if p.stem in args.only]
    log(f"executing {len(notebooks)} notebooks, each in a fresh kernel of the env")
    results = run_in_env(py, notebooks, content, env, work / "notebooks.json")
    masks = sanitizers()
    report += ["## The notebooks", "", "| notebook | time | result | checked outputs that differ |", "|---|---|---|---|"]
    details, failed = [], []
    for r in results:
        path = Path(r["path"])
        rel = path.relative_to(course).as_posix()
        stored = cells(path)  # the copy as it was taken (the checkout may have moved on since)
        diffs = []
        for i, outputs in r["outputs"].items():
            cell = stored[int(i)]
            if CHECK in cell["source"]:
                expected, got = text_of(cell["outputs"], masks), text_of(outputs, masks)
                if not cell["outputs"]:
                    diffs.append(f"[{i}] (no stored output)")
                elif expected != got:
                    diffs.append(f"[{i}]")
                    details.append(f"* {rel} [{i}]\n      {first_difference(expected, got)}")
        bad = r["failure"] or r["errors"]
        if bad:
            failed.append(rel)
            details.append(f"* {rel}: {r['failure'] or ''} " + "; ".join(f"cell [{i}] {e}: {v}" for i, e, v in r["errors"]))
        report.append(f"| {rel} | {r['seconds']:.0f} s | {'ERROR' if bad else 'ran'} | {', '.join(diffs) or '-'} |")
    final = dists(py)
    moved_later = {n: (after.get(n), final.get(n)) for n in KEPT if after.get(n) != final.get(n)}
    total = time.monotonic() - t0
    report += ["", "## Details", "", *details, "",
               f"Env set-up: {f'{created:.0f} s (created)' if created else f'{restore_s:.0f} s (restored and copied)'}; "
               f"first cell {cell_run['seconds']:.0f} s; notebooks {sum(r['seconds'] for r in results):.0f} s; "
               f"total {total:.0f} s. Python {run([py, '-c', 'import platform; print(platform.python_version())'], capture_output=True, text=True).stdout.strip()}, "
               f"{os.cpu_count()} CPUs."]
    if moved_later:
        report.append(f"KEPT PACKAGES MOVED WHILE THE NOTEBOOKS RAN: {moved_later}")
    text = "\n".join(report) + "\n"
    (work / "report.md").write_text(text)
    print(text)
    if not ok or failed or moved_later or len(results) != len(notebooks):
        log(f"FAILED: first cell {'ok' if ok else 'failed'}; notebooks with errors: {failed or 'none'}")
        return 1
    log(f"passed in {total:.0f} s (report: {(work / 'report.md').relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
