"""Limits on what one notebook's processes may take: memory, processes, file size.

Each notebook's stage 1 (:mod:`grading.run`, its kernel and whatever the kernel starts) runs in a
control group of its own when the host lets the grader make one (root, or a delegated cgroup):

* cgroup v2 (a unified hierarchy at ``/sys/fs/cgroup``, Ubuntu 22.04+, Debian 11+): a child of the
  grader's own group with ``memory.max`` and ``pids.max``, where those controllers are enabled;
* cgroup v1 (separate ``memory`` and ``pids`` hierarchies): a group in each, with
  ``memory.limit_in_bytes`` and ``pids.max``.

A process that goes past the memory limit is killed by the kernel's OOM killer (the grader then
reports the kernel died); a fork past ``pids.max`` fails. :meth:`Group.kill` ends every process in
the group, wherever it was re-parented. Where no group can be made, :func:`Group.create` returns
None and the grader says the limits are not enforced (the subreaper still kills leftovers,
:mod:`grading.processes`). Every stage-1 process also gets ``RLIMIT_FSIZE`` (no file larger than
:data:`MAX_FILE_BYTES`) and no core dumps, on every host.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMORY_BYTES = 6 * 2**30      # per notebook: a lesson needs under 2 GiB (BENCHMARK.md)
MAX_TASKS = 1024              # processes and threads per notebook
MAX_FILE_BYTES = 2 * 2**30    # one file written by a notebook (lesson 04's disk offload writes ~0.5 GB)


def _own_path(hierarchy: str) -> str | None:
    """This process's cgroup path in ``hierarchy`` ("" = the v2 unified one, else a v1 controller)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers.split(",") == [hierarchy] or (hierarchy == "" and controllers == ""):
            return path
    return None


@dataclass
class Group:
    """One notebook's cgroup: a folder per hierarchy (one for v2, one per controller for v1)."""

    version: int
    folders: list[Path] = field(default_factory=list)
    memory_bytes: int = MEMORY_BYTES
    max_tasks: int = MAX_TASKS

    @classmethod
    def create(cls, memory_bytes: int = MEMORY_BYTES, max_tasks: int = MAX_TASKS) -> Group | None:
        """A new group with both limits set, or None where this host does not let us make one."""
        if not sys.platform.startswith("linux"):
            return None
        name = f"course-grade-{uuid.uuid4().hex[:12]}"
        return cls._v2(name, memory_bytes, max_tasks) or cls._v1(name, memory_bytes, max_tasks)

    @classmethod
    def _v2(cls, name, memory_bytes, max_tasks) -> Group | None:
        own = _own_path("")
        if own is None or not (CGROUP_ROOT / "cgroup.controllers").is_file():
            return None
        parent = CGROUP_ROOT / own.lstrip("/")
        try:
            if not {"memory", "pids"} <= set((parent / "cgroup.subtree_control").read_text().split()):
                return None
            folder = parent / name
            folder.mkdir()
        except OSError:
            return None
        group = cls(2, [folder], memory_bytes, max_tasks)
        return group if group._write({"memory.max": memory_bytes, "pids.max": max_tasks}) else None

    @classmethod
    def _v1(cls, name, memory_bytes, max_tasks) -> Group | None:
        limits = {"memory": {"memory.limit_in_bytes": memory_bytes}, "pids": {"pids.max": max_tasks}}
        group = cls(1, [], memory_bytes, max_tasks)
        for controller, values in limits.items():
            own = _own_path(controller)
            if own is None:
                break
            folder = CGROUP_ROOT / controller / own.lstrip("/") / name
            try:
                folder.mkdir()
            except OSError:
                break
            group.folders.append(folder)
            if not group._write(values, folder):
                break
        else:
            return group
        group.remove()
        return None

    def _write(self, values: dict, folder: Path | None = None) -> bool:
        try:
            for file, value in values.items():
                ((folder or self.folders[0]) / file).write_text(str(value))
            return True
        except OSError:
            return False

    def describe(self) -> str:
        return (f"cgroup v{self.version}: memory {self.memory_bytes / 2**30:g} GiB, "
                f"{self.max_tasks} processes and threads")

    def join(self) -> None:
        """Move the calling process into the group (used before exec in the new process)."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> set[int]:
        found = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def kill(self, grace: float = 0.5) -> int:
        """SIGKILL every process in the group until it is empty; returns how many there were, not
        counting those that leave on their own within ``grace`` seconds (a sandbox winding down)."""
        deadline = time.monotonic() + grace
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = set()
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            seen |= pids
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        return len(seen)

    def oom_killed(self) -> bool:
        """Did the kernel kill a process of this group for going past the memory limit?"""
        file = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            lines = (self.folders[0] / file).read_text().splitlines()
            return any(line.split()[:1] == ["oom_kill"] and int(line.split()[1]) > 0 for line in lines)
        except (OSError, ValueError, IndexError):
            return False

    def remove(self) -> None:
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # the last processes are still leaving


def limit_files() -> None:
    """In the new process, before exec: no file over :data:`MAX_FILE_BYTES`, no core dumps."""
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
