"""Did a submission change the code or models the checks run on?

Without the sandbox, a learner's kernel runs with the instructor's permissions and could edit
a check, a library or a model file, which the checking process would then load. After each
notebook has run, and before its answers are judged, :func:`changed_since` looks for files
whose inode changed (``st_ctime``, which no process can set back) in what the checks load: the
course's packages, the Python installation (site-packages and the standard library) and the
course models. On Windows ``st_ctime`` is the creation time, so there the modification time counts
too (which a process can set back: the check is weaker there; docs/grading.md). A new hard link to a
watched file changes its ``st_ctime`` on Linux and macOS, so it counts as a change. Bytecode
caches (``__pycache__``) are not watched: the grader's worker and judge never read them (each
starts with a new, empty ``-X pycache_prefix``; docs/grading.md).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

SKIP = {"__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache", ".cache"}


def watched_roots() -> list[Path]:
    """The folders whose files the checking process may load."""
    from helpers.models import models_dir, repo_root

    roots = [repo_root() / "helpers", Path(__file__).parent, models_dir(),
             Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"]),
             Path(sysconfig.get_paths()["platlib"]), Path(sys.executable).parent]
    unique = []
    for r in roots:
        r = r.resolve()
        if r.exists() and not any(r == u or r.is_relative_to(u) for u in unique):
            unique = [u for u in unique if not u.is_relative_to(r)] + [r]
    return unique


def changed_since(since: float, roots: list[Path] | None = None, limit: int = 5) -> list[str]:
    """Up to ``limit`` paths under ``roots`` whose inode changed after the time ``since`` (``time.time()``)."""
    changed, todo = [], list(roots or watched_roots())
    while todo and len(changed) < limit:
        folder = todo.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if e.name not in SKIP:
                        todo.append(e.path)
                    continue  # a folder changes when a file in it does: the file is what counts
                try:
                    st = e.stat(follow_symlinks=False)
                    if max(st.st_ctime, st.st_mtime) > since:  # on Linux ctime >= mtime; on Windows ctime is creation
                        changed.append(e.path)
                except OSError:
                    continue
    return changed[:limit]
