"""Nothing a submission starts outlives its grading: adopt orphans, then kill every descendant.

The per-notebook worker (:mod:`grading.notebook`) makes itself a *child subreaper* (Linux
``prctl(PR_SET_CHILD_SUBREAPER)``): a process the learner's kernel starts and detaches (a double
fork, ``setsid``, ``start_new_session=True``) is re-parented to the worker instead of init, so
:func:`kill_descendants` finds and kills it once the notebook has run. Processes are walked with
psutil (no ``/proc`` parsing of our own), zombies included: a process whose main thread has
exited shows as a zombie while its other threads run on, and ``kill()`` of its pid still ends the
whole thread group. A descendant counts as gone only once it has been reaped. Inside the sandbox a
PID namespace does the same (:mod:`grading.sandbox`), and a cgroup, where the host lets us make
one, holds every process of a notebook (:mod:`grading.limits`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

import psutil

PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE = 36, 4


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (Linux); False where the call is not available."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def become_undumpable() -> bool:
    """Keep other processes of this user (not root) out of this one's memory and open files (Linux)."""
    return _prctl(PR_SET_DUMPABLE, 0)


def descendants(pid: int | None = None) -> list[psutil.Process]:
    """Every descendant of ``pid`` (default: this process) that still exists, zombies included."""
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_descendants(pid: int | None = None, rounds: int = 50) -> int:
    """SIGKILL every descendant of ``pid`` until none is left, zombies included (a forking process is
    caught on a later round; a zombie leader's live threads die with its pid); returns how many
    were killed. Processes that were already exiting on their own are not counted."""
    _reap()
    time.sleep(0.3)  # let processes that are exiting on their own (the sandbox's) finish: they are not counted
    _reap()
    killed = set()
    for _ in range(rounds):
        found = descendants(pid)
        if not found:
            break
        for p in found:
            killed.add(p.pid)  # after the reaping above, a zombie left is one whose threads still run
            try:
                os.kill(p.pid, signal.SIGKILL)  # the pid of a zombie leader reaches its live threads
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        _reap()
    _reap()
    return len(killed)


def _reap() -> None:
    """Collect every exited child (this process is their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
