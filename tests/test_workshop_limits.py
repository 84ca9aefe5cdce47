"""Learners' limits on cgroup v1 and v2 hosts (grading/limits.py's Group, as workshop/spawner.py uses it).

What runs where (workshop/README.md's table quotes these):

* **cgroup v1, for real**, where this machine has writable v1 memory, pids and cpu hierarchies (the
  course's machines): a learner's group under ``jupyterhub-learners``, its memory limit, CPU share and
  process limit read back from the kernel, a process past the limit killed, leftovers killed, the
  group and its parent removed. (The hub test, tests/test_workshop.py, does it with a real learner.)
* **cgroup v2, for real but without the memory controller**: this machine's v2 hierarchy
  (``/sys/fs/cgroup/unified``) has only ``hugetlb``, the other controllers being held by v1. What v2
  itself decides runs for real there: joining a group, listing and killing its processes, removing
  it, and the rule that makes the spawner put learners' groups at the top of the hierarchy: a group
  that holds processes cannot give controllers to children (checked with ``hugetlb``).
* **cgroup v2 with memory, simulated**: a fake v2 tree in a temporary folder (files where the kernel
  has them, a controller's files only where it is enabled, rmdir refused while a group has children or
  processes) for where the group goes (delegated, a systemd service, a container, a hybrid host),
  what it writes (``memory.max``, ``memory.swap.max``, ``pids.max``, ``cpu.weight``), and the hub
  log's verdict. No kernel enforced a v2 memory limit here.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import grading.limits as limits
from grading.limits import Group

pytest.importorskip("jupyterhub")  # workshop/spawner.py builds on it (the dev extra)
from workshop.spawner import learner_group, limit_report  # noqa: E402

V1_GROUP = Group.create(64 << 20, 16, name=f"probe-{os.getpid()}", parent="course-limits-test", cpu_weight=100)
if V1_GROUP:
    V1_GROUP.remove()
NO_V1 = "no cgroup can be made here (needs root and writable cgroup hierarchies)"


# --- cgroup v1, for real ----------------------------------------------------------------------------

@pytest.mark.skipif(V1_GROUP is None or V1_GROUP.version != 1, reason=NO_V1)
def test_v1_learner_group_holds_memory_cpu_and_tasks_and_goes_with_its_parent():
    name = f"jupyter-limits-{os.getpid()}"
    group = learner_group(name, 200 << 20, cpu_weight=50, max_tasks=64)
    try:
        assert group.version == 1 and all(f.name == name and f.parent.name == "jupyterhub-learners" for f in group.folders)
        assert group.memory_limit() == 200 << 20
        shares = [f for f in group.folders if (f / "cpu.shares").exists()]
        assert shares and (shares[0] / "cpu.shares").read_text().strip() == "512"  # weight 50 of 100 = 512 of 1024
        assert any((f / "pids.max").exists() and (f / "pids.max").read_text().strip() == "64" for f in group.folders)

        proc = subprocess.run([sys.executable, "-c", "x = bytearray(600 << 20); x[::4096] = b'1' * len(x[::4096]); print('survived')"],
                              capture_output=True, text=True, timeout=120, preexec_fn=group.join)
        assert "survived" not in proc.stdout and group.oom_killed()

        sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=group.join)
        level, message = limit_report(name, group, sleeper.pid, 200 << 20)
        assert level == "info" and f"enforced for {name} by cgroup v1" in message, message
        assert limit_report(name, group, 1, 200 << 20)[0] == "warning"  # pid 1 is not in it: not enforced
        again = learner_group(name, 200 << 20)  # a new server takes the group over, leftovers and all
        assert again and again.folders == group.folders and sleeper.pid in again.pids()
        assert again.kill(0.5, term=True) == 0 and sleeper.wait(5) == -15  # SIGTERM was enough
    finally:
        group.kill()
        group.remove()
    assert not any(f.exists() or f.parent.exists() for f in group.folders)


def test_no_limit_is_called_enforced_without_a_group():
    level, message = limit_report("jupyter-x", None, 123, 3 << 30)
    assert level == "warning" and "NOT enforced" in message and "advisory" in message


# --- cgroup v2, for real, without the memory controller ---------------------------------------------

def _real_v2():
    mount = limits._mounts().get("")
    own = limits._own_folder("")
    if os.geteuid() != 0 or not mount or not own:
        return None
    try:
        probe = own[0] / f"course-v2-probe-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return None
    return own[0]


V2 = _real_v2()


@pytest.mark.skipif(V2 is None, reason="no writable cgroup v2 hierarchy here")
def test_real_v2_join_kill_remove_and_no_internal_processes():
    controllers = set((V2 / "cgroup.controllers").read_text().split())
    stand_in = "memory" if "memory" in controllers else "hugetlb" if "hugetlb" in controllers else None
    enabled_before = set((V2 / "cgroup.subtree_control").read_text().split())
    busy, empty = V2 / f"course-v2-busy-{os.getpid()}", V2 / f"course-v2-empty-{os.getpid()}"
    busy.mkdir()
    empty.mkdir()
    group = Group(2, [busy])
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=group.join)
    try:
        assert group.pids() == {sleeper.pid}
        assert f"0::/{busy.relative_to(limits._mounts()[''][0])}" in Path(f"/proc/{sleeper.pid}/cgroup").read_text()
        if stand_in:
            assert limits._enable(V2, {stand_in}), f"{V2} could not give {stand_in} to its children"
            assert stand_in in (busy / "cgroup.controllers").read_text().split()
            # v2's rule: a group that holds processes cannot give a controller to children (EBUSY) ...
            assert not limits._enable(busy, {stand_in})
            # ... while an empty one can: hence learners' groups in a parent of their own
            assert limits._enable(empty, {stand_in})
            (empty / "child").mkdir()
            assert stand_in in (empty / "child" / "cgroup.controllers").read_text().split()
            (empty / "child").rmdir()
        assert group.kill() == 1 and sleeper.wait(5) == -9 and not group.pids()
    finally:
        sleeper.kill()
        sleeper.wait()
        group.remove()
        empty.rmdir()
        if stand_in and stand_in not in enabled_before:
            try:
                limits._put(V2 / "cgroup.subtree_control", f"-{stand_in}")
            except OSError:
                pass
    assert not busy.exists() and not empty.exists()
    print(f"real cgroup v2 at {V2}: controllers {sorted(controllers)}; stand-in for the rule: {stand_in}")


# --- cgroup v2 with memory, simulated -------------------------------------------------------------

FILES = {"memory": {"memory.max": "max", "memory.swap.max": "max", "memory.events": "oom_kill 0"},
         "pids": {"pids.max": "max"}, "cpu": {"cpu.weight": "100"}}


class FakeV2:
    """A cgroup v2 tree in a folder, as the kernel shows one: each group has cgroup.controllers (its
    parent's subtree_control), cgroup.subtree_control, cgroup.procs, and the files of its enabled
    controllers only (a write to a missing one fails); subtree_control takes "+c -c" for controllers
    the group has, and refuses (EBUSY) in a group that holds processes, except at the real top;
    rmdir is refused while a group has children or processes."""

    def __init__(self, tmp: Path, monkeypatch, own: str, top_enabled="cpu memory pids", mount_root="/",
                 top_is_root=True):
        self.top, self.busy, self.top_is_root = tmp / "cgroup", set(), top_is_root
        self.top.mkdir()
        (tmp / "mountinfo").write_text(
            f"25 1 0:22 / /proc rw - proc proc rw\n"
            f"30 25 0:26 {mount_root} {self.top} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
        (tmp / "self-cgroup").write_text(f"0::{own}\n")
        monkeypatch.setattr(limits, "MOUNTINFO", tmp / "mountinfo")
        monkeypatch.setattr(limits, "OWN_GROUPS", tmp / "self-cgroup")
        monkeypatch.setattr(limits, "_mkdir", self.mkdir)
        real_put, real_rmdir = limits._put, Path.rmdir
        monkeypatch.setattr(limits, "_put", lambda file, value: self.put(file, value, real_put))
        monkeypatch.setattr(Path, "rmdir", lambda folder: self.rmdir(folder, real_rmdir))
        self._populate(self.top, "cpu memory pids hugetlb", top_enabled)

    def _populate(self, folder, controllers, enabled=""):
        (folder / "cgroup.controllers").write_text(controllers + "\n")
        (folder / "cgroup.subtree_control").write_text(enabled + "\n")
        (folder / "cgroup.procs").write_text("")
        for controller in controllers.split():
            for name, value in FILES.get(controller, {}).items():
                (folder / name).write_text(value + "\n")

    def group(self, path: str, enabled: str = "", busy: bool = False) -> Path:
        folder = self.top
        for part in [p for p in path.strip("/").split("/") if p]:
            parent, folder = folder, folder / part
            if not folder.exists():
                folder.mkdir()
                self._populate(folder, (parent / "cgroup.subtree_control").read_text().strip())
        (folder / "cgroup.subtree_control").write_text(enabled + "\n")
        if busy:
            self.busy.add(folder)
            (folder / "cgroup.procs").write_text("4242\n")
        return folder

    def put(self, file: Path, value, real_put):
        if self.top not in file.parents or file.name != "cgroup.subtree_control":
            return real_put(file, value)
        folder = file.parent
        if folder in self.busy and not (folder == self.top and self.top_is_root):
            raise OSError(16, "Device or resource busy", str(file))  # no internal processes
        have = set(file.read_text().split())
        allowed = set((folder / "cgroup.controllers").read_text().split())
        for change in str(value).split():
            if change[1:] not in allowed:
                raise OSError(2, "No such file or directory", str(file))
            (have.add if change[0] == "+" else have.discard)(change[1:])
        file.write_text(" ".join(sorted(have)) + "\n")

    def mkdir(self, folder: Path, reuse: bool) -> bool:
        if folder.exists():
            return reuse
        try:
            folder.mkdir()
        except OSError:
            return False
        self._populate(folder, (folder.parent / "cgroup.subtree_control").read_text().strip())
        return True

    def rmdir(self, folder: Path, real_rmdir):
        if self.top in folder.parents:
            if any(p.is_dir() for p in folder.iterdir()) or (folder / "cgroup.procs").read_text().strip():
                raise OSError(16, "Device or resource busy", str(folder))
            for f in folder.iterdir():
                f.unlink()
        return real_rmdir(folder)


def _sleeper(group):
    return subprocess.Popen(["sleep", "30"], preexec_fn=group.join)


def test_v2_delegated_group_holds_the_learners_with_memory_swap_tasks_and_cpu_weight(tmp_path, monkeypatch):
    fake = FakeV2(tmp_path, monkeypatch, own="/hub.slice/hub")
    fake.group("/hub.slice", enabled="cpu memory pids")
    own = fake.group("/hub.slice/hub", enabled="cpu memory pids")  # delegated to the hub, no processes of its own
    group = learner_group("jupyter-ada", 3 << 30, cpu_weight=200, max_tasks=4096)
    assert group.version == 2 and group.folders == [own / "jupyterhub-learners" / "jupyter-ada"]
    folder = group.folders[0]
    assert (folder / "memory.max").read_text() == str(3 << 30) and (folder / "memory.swap.max").read_text() == "0"
    assert (folder / "pids.max").read_text() == "4096" and (folder / "cpu.weight").read_text() == "200"
    assert set((own / "jupyterhub-learners" / "cgroup.subtree_control").read_text().split()) >= {"cpu", "memory", "pids"}
    sleeper = _sleeper(group)
    try:
        level, message = limit_report("jupyter-ada", group, sleeper.pid, 3 << 30)
        assert level == "info" and "enforced for jupyter-ada by cgroup v2" in message and "memory.max = 3221225472" in message
        assert "CPU weight 200 (cpu.weight)" in message and "4096 tasks" in message
        (folder / "memory.max").write_text("max")  # a kernel that did not take the limit: never "enforced"
        assert limit_report("jupyter-ada", group, sleeper.pid, 3 << 30)[0] == "warning"
    finally:
        sleeper.kill()
        sleeper.wait()
    (folder / "cgroup.procs").write_text("")
    group.remove()
    assert not (own / "jupyterhub-learners").exists() and own.exists()  # the parent goes with its last learner


def test_v2_hub_in_a_systemd_service_puts_learners_at_the_top(tmp_path, monkeypatch):
    fake = FakeV2(tmp_path, monkeypatch, own="/system.slice/jupyterhub.service")
    fake.group("/system.slice", enabled="cpu memory pids")
    fake.group("/system.slice/jupyterhub.service", busy=True)  # holds the hub: no controllers for children
    group = learner_group("jupyter-ada", 1 << 30)
    assert group.version == 2 and group.folders == [fake.top / "jupyterhub-learners" / "jupyter-ada"]
    assert (group.folders[0] / "memory.max").read_text() == str(1 << 30)
    assert (group.folders[0] / "cpu.weight").read_text() == "100"


def test_v2_grader_group_keeps_its_callers_defaults(tmp_path, monkeypatch):
    fake = FakeV2(tmp_path, monkeypatch, own="/user.slice/session-1.scope")
    fake.group("/user.slice", enabled="memory pids")
    fake.group("/user.slice/session-1.scope", busy=True)
    (fake.top / "cgroup.subtree_control").write_text("memory pids\n")
    group = Group.create(200 << 20)  # as grading/worker.py calls it
    assert group.version == 2 and group.folders[0].parent == fake.top and group.folders[0].name.startswith("course-grade-")
    assert (group.folders[0] / "pids.max").read_text() == str(limits.MAX_TASKS)
    assert not (group.folders[0] / "cpu.weight").exists() or (group.folders[0] / "cpu.weight").read_text().strip() == "100"
    group.remove()
    assert not group.folders[0].exists()


def test_v2_container_whose_own_group_holds_processes_gets_no_group(tmp_path, monkeypatch):
    # a cgroup namespace: its top is our own group, which holds the container's processes
    fake = FakeV2(tmp_path, monkeypatch, own="/", top_enabled="", top_is_root=False)
    fake.group("/", busy=True)
    assert learner_group("jupyter-ada", 1 << 30) is None
    level, message = limit_report("jupyter-ada", None, None, 1 << 30)
    assert level == "warning" and "NOT enforced" in message


def test_v2_hybrid_host_without_memory_in_v2_has_no_v2_group(tmp_path, monkeypatch):
    fake = FakeV2(tmp_path, monkeypatch, own="/", top_enabled="")
    (fake.top / "cgroup.controllers").write_text("hugetlb\n")  # as /sys/fs/cgroup/unified here: memory is v1's
    assert Group.create(1 << 30, name="x", parent="p", cpu_weight=100) is None  # and no v1 mounts in this fake
    assert not (fake.top / "p").exists()


def test_mount_root_and_own_path_resolve_inside_a_container(tmp_path, monkeypatch):
    fake = FakeV2(tmp_path, monkeypatch, own="/docker/abc/inner", mount_root="/docker/abc")
    assert limits._own_folder("") == (fake.top / "inner", fake.top)
    (tmp_path / "self-cgroup").write_text("0::/elsewhere\n")
    assert limits._own_folder("") is None  # our group is not in the part mounted here
