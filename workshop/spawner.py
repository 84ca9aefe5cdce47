"""The workshop's spawner: JupyterHub's ``LocalProcessSpawner`` plus what a classroom needs.

What it adds, and nothing else:

* **one unix user per learner**, named as The Littlest JupyterHub names them (``jupyter-<name>``,
  so a learner who logs in as ``root`` gets ``jupyter-root``), created on the first start with a
  private home (mode 0700) under :attr:`WorkshopSpawner.homes`;
* **the course in that home**: ``~/course/notebooks`` and ``~/course/exercises``, merged from
  :attr:`WorkshopSpawner.course_dir` at every start by the learner's own user (so root never
  writes into a folder a learner controls): new files appear, files the learner never touched get
  corrections, files the learner changed are kept with the new version beside them
  (:mod:`workshop.update`). The course checkout itself, its virtual environment and the models
  stay root-owned and read-only;
* **a memory limit that is enforced** where this machine allows it, with a CPU share and a
  process limit, by :class:`grading.limits.Group`: cgroup v2 (``memory.max``, ``cpu.weight``,
  ``pids.max``) or v1 (``memory.limit_in_bytes``, ``cpu.shares``, ``pids.max``). Each learner's
  server and kernels run in a group ``jupyter-<name>`` inside ``jupyterhub-learners``; a kernel
  that goes past the limit is killed by the kernel's OOM killer (JupyterLab then says the kernel
  died and restarts it). The hub log says, per start, which mechanism holds the limit, and calls
  it enforced only once the server's process is in the group and the kernel reads the limit back;
  elsewhere the limit is advisory (``MEM_LIMIT`` in the learner's environment) and the log says so.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Integer, List, Unicode

from grading.limits import Group
from workshop.update import merge_as

UNIX_PREFIX = "jupyter-"  # TLJH's convention
CGROUP_FOLDER = "jupyterhub-learners"


def unix_name(hub_name: str) -> str:
    """The unix user of the hub user ``hub_name``."""
    return UNIX_PREFIX + hub_name


def threads_per_learner(cores: int | None = None) -> int:
    """A learner's kernel threads: 1 per 8 cores of this machine, from 1 to 4. Learners share the
    cores; a kernel with more threads than the cores left to it runs slower, not faster."""
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, min(4, cores // 8))


def ensure_learner(name: str, homes: str | Path, course_dir: str | Path,
                   folders=("notebooks", "exercises"), python: str | None = None, report=None) -> pwd.struct_passwd:
    """Create the unix user ``name`` (if missing) with a private home under ``homes``, and bring its
    copy of the course's ``folders`` in ``~/course`` up to date (:func:`workshop.update.merge`: the
    learner's changes are never overwritten), as the learner. ``report(line)`` gets each change."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--home-dir", str(Path(homes) / name),
                        "--shell", "/bin/bash", "--user-group", name],
                       check=True, capture_output=True, text=True)
        pw = pwd.getpwnam(name)
    home = Path(pw.pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
    os.chmod(home, 0o700, follow_symlinks=False)  # learners cannot read each other's work
    merged = merge_as(name, course_dir, folders, python)  # None: a Python every user can start
    if merged.returncode != 0:
        raise RuntimeError(f"could not bring {name}'s copy of the course up to date: {merged.stderr.strip()[-500:]}")
    for line in merged.stdout.strip().splitlines():
        (report or (lambda _: None))(line)
    return pw


def learner_group(name: str, mem_limit: int, cpu_weight: int | None = 100, max_tasks: int | None = 4096) -> Group | None:
    """A cgroup for learner ``name`` (``jupyterhub-learners/<name>``) holding the memory limit, a CPU
    share and a process limit; an existing one (left by a server that died) is taken over. None
    where this host lets the hub make none."""
    return Group.create(mem_limit, max_tasks or None, name=name, parent=CGROUP_FOLDER,
                        cpu_weight=cpu_weight or None, reuse=True)


def limit_report(name: str, group: Group | None, pid: int | None, mem_limit: int) -> tuple[str, str]:
    """``(level, message)`` for the hub log: which mechanism holds ``name``'s memory limit. "enforced"
    only when ``pid`` (the server) is in the group and the kernel reads the limit back."""
    mib = mem_limit >> 20
    if group is None:
        return "warning", (f"memory limit {mib} MiB for {name} is NOT enforced, advisory only (MEM_LIMIT in its "
                           "environment): this host let the hub make no cgroup (needs root and a writable cgroup "
                           "v2 hierarchy with the memory controller, or a cgroup v1 memory hierarchy)")
    if pid is None or not group.enforced(pid):
        return "warning", (f"memory limit {mib} MiB for {name} is NOT enforced: cgroup v{group.version} "
                           f"{group.folders[0]} was made, but the server (pid {pid}) is not in it or its limit "
                           f"reads back as {group.memory_limit()}")
    extras = [f"CPU weight {group.cpu_weight}" + (" (cpu.shares)" if group.version == 1 else " (cpu.weight)")
              if group.cpu_weight else "", f"{group.max_tasks} tasks (pids.max)" if group.max_tasks else ""]
    return "info", (f"memory limit {mib} MiB enforced for {name} by cgroup v{group.version} "
                    f"({group.limit_file()} = {group.memory_limit()}); " + ", ".join(e for e in extras if e)
                    + f"; group folders: {' '.join(str(f) for f in group.folders)}")


def memory_limit_mechanism() -> str | None:
    """How this host would hold a learner's memory limit ("cgroup v2", "cgroup v1"), found by making
    and removing a probe group; None where the limit can only be advisory."""
    group = learner_group(f"probe-{os.getpid()}", 256 << 20)
    if group is None:
        return None
    group.remove()
    return f"cgroup v{group.version}"


class WorkshopSpawner(LocalProcessSpawner):
    """``LocalProcessSpawner`` for a workshop: separate unix users, the course in each home (kept
    up to date), the memory limit enforced by a cgroup where possible (see the module docstring)."""

    homes = Unicode("/home", config=True, help="Folder in which learners' homes are created.")
    course_dir = Unicode(config=True, help="The course to merge into ~/course (read-only to learners).")
    course_folders = List(["notebooks", "exercises"], config=True,
                          help="Folders of course_dir merged into ~/course at each start.")
    cpu_weight = Integer(100, config=True,
                         help="Each learner's CPU share (cgroup v2 cpu.weight, 1-10000; v1 cpu.shares = x 10.24). "
                              "Equal weights: a learner with five busy kernels gets no more than one with one.")
    max_tasks = Integer(4096, config=True, help="Processes and threads per learner (pids.max); 0: no limit.")

    group: Group | None = None

    @property
    def unix_name(self) -> str:
        return unix_name(self.user.name)

    async def start(self):
        await asyncio.to_thread(ensure_learner, self.unix_name, self.homes, self.course_dir, self.course_folders,
                                sys.executable, lambda line: self.log.info("course for %s: %s", self.unix_name, line))
        self.group = None
        if self.mem_limit:
            self.group = await asyncio.to_thread(learner_group, self.unix_name, self.mem_limit,
                                                 self.cpu_weight, self.max_tasks)
            left = await asyncio.to_thread(self.group.kill, 0) if self.group and self.group.pids() else 0
            if left:
                self.log.warning("stopped %d process(es) an earlier server of %s left in its cgroup", left, self.unix_name)
        result = await super().start()
        if self.mem_limit:
            level, message = limit_report(self.unix_name, self.group, self.pid, self.mem_limit)
            getattr(self.log, level)(message)
        return result

    def make_preexec_fn(self, name):
        """Runs in the new process before it becomes the learner: join the cgroup, then drop root.
        A failed join is not fatal: the log then says the limit is not enforced."""
        become_learner = set_user_setuid(self.unix_name)
        group = self.group

        def preexec():
            if group:
                try:
                    group.join()
                except OSError:
                    pass
            become_learner()
        return preexec

    def user_env(self, env):
        pw = pwd.getpwnam(self.unix_name)
        env.update(USER=pw.pw_name, HOME=pw.pw_dir, SHELL=pw.pw_shell)
        return env

    def get_state(self):
        state = super().get_state()
        if self.group:  # a hub that restarts while this server runs still stops what is in the group
            state["cgroup"] = {"version": self.group.version, "folders": [str(f) for f in self.group.folders],
                               "memory_bytes": self.group.memory_bytes, "parent": self.group.parent}
        return state

    def load_state(self, state):
        super().load_state(state)
        saved = state.get("cgroup")
        if saved:
            self.group = Group(saved["version"], [Path(f) for f in saved["folders"]], saved["memory_bytes"],
                               None, None, saved.get("parent"))

    async def stop(self, now=False):
        """Stop the server, then what it left running in its cgroup (kernels that outlive it for a
        moment, a terminal's jobs: SIGTERM, 5 s, then SIGKILL, as systemd stops a unit), then remove
        the cgroup (and ``jupyterhub-learners`` with the last learner's)."""
        await super().stop(now=now)
        group, self.group = self.group, None  # kept until now: poll() clears the rest of the state
        if group and group.folders[0].exists():
            await asyncio.to_thread(group.kill, 5.0, True)
            await asyncio.to_thread(group.remove)
