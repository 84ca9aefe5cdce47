"""``--sandbox``: run a submission (stage 1: its kernel and nbclient) under bubblewrap.

What the sandboxed processes get (``bwrap`` from Debian's ``bubblewrap`` package, no root needed
where unprivileged user namespaces are allowed):

* no network (a network namespace of their own, with only a loopback, which the kernel needs);
* uid/gid 65534 (``nobody``) in a user namespace of their own, with no capabilities;
* a cleared environment: only the variables the kernel needs (:data:`grading.batch.KEPT_ENV`), never
  the instructor's tokens or keys;
* a read-only view of the system folders, the Python installation, the course's two packages
  (``helpers/``, ``grading/``) and its models; nothing else of the machine (no home folders, no
  ``/root``, not the course folder itself, so no submissions kept there, no other submission);
* the notebook read-only at ``/grade/submission.ipynb``; its working folder ``/grade/work`` and a
  private ``/tmp`` and ``/dev/shm`` are memory-backed and sized (:data:`TMPFS_BYTES`); the answers
  folder ``/grade/answers`` is the only folder of the machine it can write;
* a PID namespace: they see no other process, and all of them are killed when the sandbox ends.

GPUs (``/dev/nvidia*``) are passed through when present (written for CUDA machines, not yet run on
one: the sandbox test ran on CPU-only machines).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

SYSTEM = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
          "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/passwd",
          "/etc/group", "/etc/nsswitch.conf", "/etc/localtime", "/etc/hosts", "/etc/ssl", "/etc/ca-certificates"]


def available() -> str | None:
    """None when ``--sandbox`` can run here; else why not (and what to install)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    import tempfile
    with tempfile.TemporaryDirectory(prefix="grade-probe-") as work:
        Path(work, "submission.ipynb").touch()
        Path(work, "answers").mkdir()
        probe = subprocess.run(command([sys.executable, "-c", "pass"], work, {"PATH": "/usr/bin:/bin"}),
                               capture_output=True, text=True)
    if probe.returncode != 0:
        return ("bubblewrap cannot create its namespaces here (" + probe.stderr.strip()[:200]
                + "): user namespaces may be disabled, as in some containers")
    return None


TMPFS_BYTES = {"/grade/work": 2 * 2**30, "/tmp": 512 * 2**20, "/dev/shm": 512 * 2**20}
INSIDE = {"notebook": "/grade/submission.ipynb", "workdir": "/grade/work", "answers": "/grade/answers"}


def readable_paths() -> list[str]:
    """What the sandbox shows read-only: system folders, the Python installation, the course's packages, the models."""
    from helpers.models import models_dir, repo_root

    packages = [repo_root() / "helpers", Path(__file__).resolve().parent]
    python = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)]
    paths = [p for p in SYSTEM if os.path.lexists(p)]
    return paths + sorted({str(Path(p).resolve()) for p in [*python, *packages, models_dir()] if Path(p).exists()})


def command(argv: list[str], outside: str, env: dict) -> list[str]:
    """``argv`` wrapped in bwrap with only ``env`` set; ``outside`` is the grading folder on the host
    (``submission.ipynb`` and ``answers/`` in it), seen inside as :data:`INSIDE`."""
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534",
           "--clearenv", "--proc", "/proc", "--dev", "/dev"]
    for folder, size in TMPFS_BYTES.items():
        cmd += ["--size", str(size), "--tmpfs", folder]
    for path in readable_paths():
        cmd += ["--ro-bind", path, path]
    for device in sorted(glob.glob("/dev/nvidia*")):
        cmd += ["--dev-bind", device, device]
    cmd += ["--ro-bind", f"{outside}/submission.ipynb", INSIDE["notebook"],
            "--bind", f"{outside}/answers", INSIDE["answers"], "--remount-ro", "/", "--chdir", INSIDE["workdir"]]
    for name, value in sorted(env.items()):
        cmd += ["--setenv", name, value]
    return cmd + ["--", *argv]
