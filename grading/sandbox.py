"""``--sandbox``: run a submission (stage 1: its kernel and nbclient) under bubblewrap.

What the sandboxed processes get (``bwrap`` from Debian's ``bubblewrap`` package, no root needed
where unprivileged user namespaces are allowed):

* no network (a network namespace of their own, with only a loopback, which the kernel needs);
* uid/gid 65534 (``nobody``) in a user namespace of their own, with no capabilities;
* a read-only view of the system folders, the Python installation, the course and its models;
  nothing else of the machine (no home folders, no other submission, no ``/root``);
* one writable folder: the submission's working folder (plus a private ``/tmp`` and ``/dev/shm``);
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
        probe = subprocess.run(command([sys.executable, "-c", "pass"], Path(work)), capture_output=True, text=True)
    if probe.returncode != 0:
        return ("bubblewrap cannot create its namespaces here (" + probe.stderr.strip()[:200]
                + "): user namespaces may be disabled, as in some containers")
    return None


def readable_paths() -> list[str]:
    """What the sandbox shows read-only: system folders, the Python installation, the course, the models."""
    import helpers
    from helpers.models import models_dir

    course = Path(helpers.__file__).resolve().parent.parent
    python = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)]
    paths = [p for p in SYSTEM if os.path.lexists(p)]
    return paths + sorted({str(Path(p).resolve()) for p in [*python, course, models_dir()] if Path(p).exists()})


def command(argv: list[str], workdir: Path) -> list[str]:
    """``argv`` wrapped in bwrap, with ``workdir`` as the only writable folder (and its working folder)."""
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534",
           "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
    for path in readable_paths():
        cmd += ["--ro-bind", path, path]
    for device in sorted(glob.glob("/dev/nvidia*")):
        cmd += ["--dev-bind", device, device]
    workdir = str(Path(workdir).resolve())
    cmd += ["--bind", workdir, workdir, "--remount-ro", "/", "--chdir", workdir, "--setenv", "HOME", workdir]
    return cmd + ["--", *argv]
