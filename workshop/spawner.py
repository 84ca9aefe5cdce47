"""The workshop's spawner: JupyterHub's ``LocalProcessSpawner`` plus what a classroom needs.

What it adds, and nothing else:

* **one unix user per learner**, named as The Littlest JupyterHub names them (``jupyter-<name>``,
  so a learner who logs in as ``root`` gets ``jupyter-root``), created on the first start with a
  private home (mode 0700) under :attr:`WorkshopSpawner.homes`;
* **the course in that home**: ``~/course/notebooks`` and ``~/course/exercises``, copied once, by
  the learner's own user (so root never writes into a folder a learner controls); the learner's
  later edits are never overwritten. The course checkout itself, its virtual environment and the
  models stay root-owned and read-only;
* **a memory limit that is enforced** where this machine allows it: a cgroup v1 memory controller
  that the hub (root) can write to, as on this course's CI machines. Each learner's server and
  kernels run in ``<the hub's cgroup>/jupyterhub-learners/jupyter-<name>`` with
  ``memory.limit_in_bytes = Spawner.mem_limit``; a kernel that goes past it is killed by the
  kernel's OOM killer (JupyterLab then says the kernel died and restarts it). Elsewhere the limit
  is advisory (``MEM_LIMIT`` in the learner's environment, shown by resource-usage extensions) and
  the hub logs so; on a systemd machine use TLJH, whose spawner enforces it (workshop/README.md).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import subprocess
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import List, Unicode

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
                   folders=("notebooks", "exercises")) -> pwd.struct_passwd:
    """Create the unix user ``name`` (if missing) with a private home under ``homes``, and give it
    its own copy of the course's ``folders`` in ``~/course`` (once: an existing copy is kept)."""
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
    sources = [str(Path(course_dir) / f) for f in folders]
    # Run as the learner: no file in a learner's home is ever written by root.
    subprocess.run(["sh", "-c", 'test -e "$HOME/course" || { mkdir "$HOME/course" && cp -R "$@" "$HOME/course/"; }',
                    "copy-course", *sources], check=True, capture_output=True, text=True,
                   preexec_fn=set_user_setuid(name), env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    return pw


def memory_cgroup_root() -> Path | None:
    """The cgroup v1 memory folder of this process when it can hold the learners' cgroups, else None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if (folder / "memory.limit_in_bytes").is_file() and os.access(folder, os.W_OK):
                return folder
    return None


class WorkshopSpawner(LocalProcessSpawner):
    """``LocalProcessSpawner`` for a workshop: separate unix users, the course in each home,
    the memory limit enforced by a cgroup where possible (see the module docstring)."""

    homes = Unicode("/home", config=True, help="Folder in which learners' homes are created.")
    course_dir = Unicode(config=True, help="The course checkout to copy from (read-only to learners).")
    course_folders = List(["notebooks", "exercises"], config=True,
                          help="Folders of course_dir copied into ~/course on a learner's first start.")

    @property
    def unix_name(self) -> str:
        return unix_name(self.user.name)

    def cgroup(self) -> Path | None:
        """This learner's memory cgroup, or None where the limit can only be advisory."""
        root = memory_cgroup_root()
        return root / CGROUP_FOLDER / self.unix_name if root and self.mem_limit else None

    async def start(self):
        await asyncio.to_thread(ensure_learner, self.unix_name, self.homes, self.course_dir, self.course_folders)
        group = self.cgroup()
        if group:
            group.mkdir(parents=True, exist_ok=True)
            (group / "memory.limit_in_bytes").write_text(str(self.mem_limit))
            self.log.info("memory limit %d MiB enforced for %s (cgroup %s)",
                          self.mem_limit >> 20, self.unix_name, group)
        else:
            self.log.warning("memory limit for %s is advisory only (MEM_LIMIT in its environment): "
                             "no writable cgroup v1 memory controller here", self.unix_name)
        return await super().start()

    def make_preexec_fn(self, name):
        """Runs in the new process before it becomes the learner: join the cgroup, then drop root."""
        become_learner = set_user_setuid(self.unix_name)
        group = self.cgroup()

        def preexec():
            if group:
                (group / "cgroup.procs").write_text(str(os.getpid()))
            become_learner()
        return preexec

    def user_env(self, env):
        pw = pwd.getpwnam(self.unix_name)
        env.update(USER=pw.pw_name, HOME=pw.pw_dir, SHELL=pw.pw_shell)
        return env

    async def stop(self, now=False):
        """Stop the server, then what it left running in its cgroup (kernels that outlive it for a
        moment, a terminal's jobs: as systemd stops a unit), then remove the cgroup."""
        await super().stop(now=now)
        group = self.cgroup()
        if not group or not group.exists():
            return
        def left():
            return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]

        for sig in (signal.SIGTERM, signal.SIGKILL):  # each gets up to 5 s
            for pid in left():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            for _ in range(50):
                if not left():
                    break
                await asyncio.sleep(0.1)
        for folder in (group, group.parent):  # the parent goes with its last learner
            try:
                folder.rmdir()
            except OSError:
                pass
