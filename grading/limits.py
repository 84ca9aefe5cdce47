"""Limits on what a group of processes may take: memory, processes, a CPU share, file size.

One home for cgroup handling, used by the grader (each notebook's stage 1, :mod:`grading.run`,
its kernel and whatever the kernel starts) and by the workshop hub (each learner's server and
kernels, ``workshop/spawner.py``). A :class:`Group` is made where the host lets us make one
(root, or a delegated cgroup):

* cgroup v2 (one unified hierarchy, Ubuntu 22.04+, Debian 11+): a folder with ``memory.max``
  (and ``memory.swap.max = 0`` where there is swap), ``pids.max`` and ``cpu.weight``. It goes
  under this process's own group when the controllers are enabled there (delegated), else under
  the top of the hierarchy (root only): a group that holds processes, such as a systemd service
  or session scope, cannot have children with controllers (cgroup v2's no-internal-processes rule);
* cgroup v1 (a hierarchy per controller): a folder in each of ``memory``, ``pids`` and ``cpu``
  under this process's own group, with ``memory.limit_in_bytes``, ``pids.max``, ``cpu.shares``.

Where the hierarchies are mounted comes from ``/proc/self/mountinfo``, this process's groups from
``/proc/self/cgroup`` (so a hybrid host with an empty v2 mount beside v1 controllers uses v1).

A process that goes past the memory limit is killed by the kernel's OOM killer (the grader then
reports the kernel died); a fork past ``pids.max`` fails. :meth:`Group.kill` ends every process in
the group, wherever it was re-parented. Where no group can be made, :func:`Group.create` returns
None and the caller says the limits are not enforced (the grader's subreaper still kills
leftovers, :mod:`grading.processes`). :meth:`Group.enforced` reads the limit back and checks that a
process is in the group, so nobody calls a limit enforced on the word of a write alone. Every
stage-1 process also gets ``RLIMIT_FSIZE`` (no file larger than :data:`MAX_FILE_BYTES`) and no core
dumps, on every host.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")   # where each hierarchy is mounted (a test points these at fakes)
OWN_GROUPS = Path("/proc/self/cgroup")     # this process's group in each hierarchy
MEMORY_BYTES = 6 * 2**30      # per notebook: a lesson needs under 2 GiB (BENCHMARK.md)
MAX_TASKS = 1024              # processes and threads per notebook
MAX_FILE_BYTES = 2 * 2**30    # one file written by a notebook (lesson 04's disk offload writes ~0.5 GB)
CONTROLLERS = ("memory", "pids", "cpu")


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mounts() -> dict[str, tuple[Path, str]]:
    """``{hierarchy: (mount point, the hierarchy's folder mounted there)}``; "" is the v2 hierarchy."""
    try:
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, tuple[Path, str]] = {}
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        where = (Path(_unescape(fields[4])), _unescape(fields[3]))
        if tail[0] == "cgroup2":
            found.setdefault("", where)
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in CONTROLLERS:
                    found.setdefault(option, where)
    return found


def _own_path(hierarchy: str) -> str | None:
    """This process's cgroup path in ``hierarchy`` ("" = the v2 unified one, else a v1 controller)."""
    try:
        lines = OWN_GROUPS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (hierarchy == "" and controllers == "") or (hierarchy and hierarchy in controllers.split(",")):
            return path
    return None


def _own_folder(hierarchy: str) -> tuple[Path, Path] | None:
    """``(this process's group folder, the top of the mounted hierarchy)`` in ``hierarchy``, or None."""
    mount, own = _mounts().get(hierarchy), _own_path(hierarchy)
    if mount is None or own is None:
        return None
    point, mounted = mount
    relative = os.path.relpath(own, mounted)
    if relative.startswith(".."):
        return None  # our group lies outside the part of the hierarchy mounted here
    return (point if relative == "." else point / relative), point


def _put(file: Path, value) -> None:
    """Write ``value`` into an interface file that must exist (a cgroup folder has one per setting of
    its enabled controllers: a missing file means the controller is not there, never a file to make)."""
    fd = os.open(file, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _enable(folder: Path, controllers: set[str]) -> bool:
    """Whether ``folder``'s children get ``controllers`` (v2): already enabled, or enabled now."""
    try:
        have = set((folder / "cgroup.subtree_control").read_text().split())
        if controllers <= have:
            return True
        if not controllers <= set((folder / "cgroup.controllers").read_text().split()):
            return False
        _put(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(controllers - have)))
        return True
    except OSError:
        return False  # EBUSY: it holds processes (no internal processes in v2); EACCES: not ours


def _mkdir(folder: Path, reuse: bool) -> bool:
    try:
        folder.mkdir(exist_ok=reuse)
        return True
    except OSError:
        return False


@dataclass
class Group:
    """One cgroup: a folder per hierarchy (one for v2, one per controller for v1, memory first)."""

    version: int
    folders: list[Path] = field(default_factory=list)
    memory_bytes: int = MEMORY_BYTES
    max_tasks: int | None = MAX_TASKS
    cpu_weight: int | None = None
    parent: str | None = None   # the folder the group was made in (removed with its last group)

    @classmethod
    def create(cls, memory_bytes: int = MEMORY_BYTES, max_tasks: int | None = MAX_TASKS, *,
               name: str | None = None, parent: str | None = None, cpu_weight: int | None = None,
               reuse: bool = False) -> Group | None:
        """A new group with the limits set, or None where this host does not let us make one.

        ``name``: the group's folder (default a fresh ``course-grade-<hex>``); ``parent``: a folder
        to make it in (made if missing, removed by :meth:`remove` once empty); ``max_tasks``: None for
        no process limit; ``cpu_weight``: a CPU share in v2 units (1-10000, 100 = everyone's default;
        v1 gets ``cpu.shares`` = weight x 1024 / 100); ``reuse``: take over an existing folder of
        that name (one a stopped server left) instead of failing."""
        if not sys.platform.startswith("linux"):
            return None
        name = name or f"course-grade-{uuid.uuid4().hex[:12]}"
        group = cls(0, [], memory_bytes, max_tasks, cpu_weight, parent)
        for _ in range(2):  # once more if a neighbour removed the parent between our two mkdirs
            made = group._v2(name, reuse) or group._v1(name, reuse)
            if made:
                return made
        return None

    def _wanted(self) -> dict[str, dict[str, int]]:
        wanted = {"memory": {}}
        if self.max_tasks is not None:
            wanted["pids"] = {}
        if self.cpu_weight is not None:
            wanted["cpu"] = {}
        return wanted

    def _v2(self, name: str, reuse: bool) -> Group | None:
        own = _own_folder("")
        if own is None or not (own[1] / "cgroup.controllers").is_file():
            return None
        needed = set(self._wanted())
        limits = {"memory.max": self.memory_bytes}
        if self.max_tasks is not None:
            limits["pids.max"] = self.max_tasks
        if self.cpu_weight is not None:
            limits["cpu.weight"] = max(1, min(10000, int(self.cpu_weight)))
        for base in dict.fromkeys(own):  # our own group first, then the top of the hierarchy
            where = base / self.parent if self.parent else base
            if not _enable(base, needed) or (self.parent and not (_mkdir(where, True) and _enable(where, needed))):
                continue
            folder = where / name
            if not _mkdir(folder, reuse):
                continue
            group = Group(2, [folder], self.memory_bytes, self.max_tasks, self.cpu_weight, self.parent)
            if group._write(limits, folder):
                group._write({"memory.swap.max": 0}, folder)  # where there is swap: no way around the limit
                return group
            group.remove()
        return None

    def _v1(self, name: str, reuse: bool) -> Group | None:
        values = {"memory": {"memory.limit_in_bytes": self.memory_bytes},
                  "pids": {"pids.max": self.max_tasks},
                  "cpu": {"cpu.shares": max(2, int(self.cpu_weight or 100) * 1024 // 100)}}
        group = Group(1, [], self.memory_bytes, self.max_tasks, self.cpu_weight, self.parent)
        for controller in self._wanted():
            own = _own_folder(controller)
            if own is None:
                break
            where = own[0] / self.parent if self.parent else own[0]
            folder = where / name
            if (self.parent and not _mkdir(where, True)) or not _mkdir(folder, reuse):
                break
            group.folders.append(folder)
            if not group._write(values[controller], folder):
                break
        else:
            group._write({"memory.memsw.limit_in_bytes": self.memory_bytes}, group.folders[0])  # with swap accounting
            return group
        group.remove()
        return None

    def _write(self, values: dict, folder: Path | None = None) -> bool:
        try:
            for file, value in values.items():
                _put((folder or self.folders[0]) / file, value)
            return True
        except OSError:
            return False

    def describe(self) -> str:
        return (f"cgroup v{self.version}: memory {self.memory_bytes / 2**30:g} GiB, "
                f"{self.max_tasks} processes and threads")

    def limit_file(self) -> Path:
        """The file that holds the memory limit (``memory.max`` or ``memory.limit_in_bytes``)."""
        return self.folders[0] / ("memory.max" if self.version == 2 else "memory.limit_in_bytes")

    def memory_limit(self) -> int | None:
        """The memory limit the kernel holds for this group, read back (None: none, or unreadable)."""
        try:
            text = self.limit_file().read_text().strip()
            return None if text == "max" else int(text)
        except (OSError, ValueError, IndexError):
            return None

    def enforced(self, pid: int) -> bool:
        """Whether ``pid`` is in this group and the kernel holds a memory limit of at most ours for it
        (v1 rounds the limit down to whole pages)."""
        limit = self.memory_limit()
        return pid in self.pids() and limit is not None and limit <= self.memory_bytes

    def join(self) -> None:
        """Move the calling process into the group (used before exec in the new process)."""
        for folder in self.folders:
            _put(folder / "cgroup.procs", os.getpid())

    def pids(self) -> set[int]:
        found = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def kill(self, grace: float = 0.5, term: bool = False) -> int:
        """SIGKILL every process in the group until it is empty; returns how many there were, not
        counting those that leave on their own within ``grace`` seconds (a sandbox winding down).
        ``term``: send SIGTERM first, so they may end cleanly within ``grace`` (as systemd stops a unit)."""
        if term:
            self._signal(self.pids(), signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = set()
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            seen |= pids
            self._signal(pids, signal.SIGKILL)
            time.sleep(0.02)
        return len(seen)

    @staticmethod
    def _signal(pids, sig) -> None:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def oom_killed(self) -> bool:
        """Did the kernel kill a process of this group for going past the memory limit?"""
        file = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            lines = (self.folders[0] / file).read_text().splitlines()
            return any(line.split()[:1] == ["oom_kill"] and int(line.split()[1]) > 0 for line in lines)
        except (OSError, ValueError, IndexError):
            return False

    def remove(self) -> None:
        """Remove the group's folders (waiting for its last processes to leave), then its parent
        folder if no other group is left in it."""
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # the last processes are still leaving
        if self.parent:
            for folder in self.folders:
                try:
                    folder.parent.rmdir()
                except OSError:
                    pass  # another group is still in it


def limit_files() -> None:
    """In the new process, before exec: no file over :data:`MAX_FILE_BYTES`, no core dumps."""
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
