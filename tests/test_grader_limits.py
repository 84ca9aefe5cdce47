"""Each notebook's processes run under limits: a cgroup (memory, tasks) where the host allows one,
and a cap on file size everywhere (grading/limits.py). Skipped, with the reason, where no cgroup
can be made (not root, or a cgroup v2 host without the controllers delegated)."""

import subprocess
import sys

import pytest

from grading.limits import Group, limit_files

GROUP = Group.create(memory_bytes=200 * 2**20, max_tasks=20)
if GROUP:
    GROUP.remove()
NO_GROUP = "no cgroup can be made here (needs root and a writable cgroup v1 or delegated v2 hierarchy)"


def _in_group(group, code):
    def preexec():
        limit_files()
        group.join()
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          preexec_fn=preexec)


@pytest.mark.skipif(GROUP is None, reason=NO_GROUP)
def test_memory_past_the_limit_is_killed():
    group = Group.create(memory_bytes=200 * 2**20, max_tasks=64)
    try:
        proc = _in_group(group, "x = bytearray(600 * 2**20); x[::4096] = b'1' * len(x[::4096]); print('survived')")
        assert "survived" not in proc.stdout and proc.returncode != 0
        assert group.oom_killed()
    finally:
        group.kill()
        group.remove()


@pytest.mark.skipif(GROUP is None, reason=NO_GROUP)
def test_tasks_past_the_limit_cannot_start_and_kill_ends_them_all():
    group = Group.create(memory_bytes=2**30, max_tasks=8)
    try:
        code = ("import subprocess, sys\nstarted = 0\nfor _ in range(20):\n    try:\n"
                "        subprocess.Popen(['sleep', '60'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); started += 1\n    except OSError:\n        pass\n"
                "print(started)")
        proc = _in_group(group, code)
        assert 0 < int(proc.stdout.strip()) < 8
        assert group.pids(), "the sleeps live on in the group"
        assert group.kill() >= 1 and not group.pids()
    finally:
        group.remove()
    assert not any(f.exists() for f in group.folders)


def test_a_file_larger_than_the_cap_cannot_be_written(monkeypatch):
    import grading.limits
    monkeypatch.setattr(grading.limits, "MAX_FILE_BYTES", 2**20)
    proc = subprocess.run([sys.executable, "-c", "open('/dev/null', 'rb'); import os, tempfile\n"
                           "f = tempfile.TemporaryFile()\ntry:\n    f.write(b'x' * 2**21); f.flush(); print('wrote')\n"
                           "except OSError as e:\n    print('refused', e.errno)"],
                          capture_output=True, text=True, timeout=60, preexec_fn=grading.limits.limit_files)
    assert "refused" in proc.stdout, proc.stdout + proc.stderr
