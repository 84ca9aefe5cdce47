"""Nothing a submission starts outlives its grading: adopt orphans, then kill every descendant.

The per-notebook worker (:mod:`grading.notebook`) makes itself a *child subreaper* (Linux
``prctl(PR_SET_CHILD_SUBREAPER)``): a process the learner's kernel starts and detaches (a double
fork, ``setsid``, ``start_new_session=True``) is re-parented to the worker instead of init, so
:func:`kill_descendants` finds and kills it once the notebook has run. Inside the sandbox a PID
namespace does the same (:mod:`grading.sandbox`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (Linux); False where the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, int]:
    """``{pid: parent pid}`` of every process this user can see (from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read().decode(errors="replace")
                found[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ')'
            except (OSError, ValueError, IndexError):
                pass
    return found


def descendants(pid: int | None = None) -> list[int]:
    """The pids of every live descendant of ``pid`` (default: this process)."""
    pid = pid or os.getpid()
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def kill_descendants(pid: int | None = None, rounds: int = 20) -> int:
    """SIGKILL every descendant of ``pid`` until none is left (a forking process is caught on a later
    round) and reap the zombies; returns how many were killed."""
    _reap()
    time.sleep(0.3)  # let processes that are exiting on their own (the sandbox's) finish: they are not counted
    _reap()
    killed = set()
    for _ in range(rounds):
        pids = descendants(pid)
        alive = [p for p in pids if not _is_zombie(p)]
        if not alive:
            break
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
                killed.add(p)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        _reap()
    _reap()
    return len(killed)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().decode(errors="replace").rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
