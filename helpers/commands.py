"""``course setup``, ``course lab``, ``course test``: the make-free path, the same on every OS.

After ``pip install -e ".[lab]"`` (or ``".[dev]"`` for the tests) in a virtual environment, the
``course`` command (also ``python -m helpers``) does what the Makefile's targets do, with no
``make`` and no shell syntax, so it works in PowerShell as in bash:

* ``course setup`` - checks the Python version, then builds the course models offline
  (``python -m helpers prepare``; like ``make setup`` without the pip step, which you ran);
* ``course lab`` - JupyterLab on ``notebooks/`` (like ``make lab``; it opens your browser unless
  ``--no-browser``);
* ``course test`` - the exercises-in-sync check, then pytest as ``make test`` runs it (every core,
  one file per worker, one thread each); ``--quick`` as ``make test-quick``. Extra arguments go to
  pytest: ``course test --quick -k device``; paths replace the default ones
  (``course test --quick tests/test_device.py``). Needs ``pip install -e ".[dev]"``.

Each sets ``HF_HUB_OFFLINE=1`` unless it is set already (as ``make`` does), and runs the tools of
the Python it runs in (``sys.executable``), so the virtual environment need not be activated.
"""

from __future__ import annotations

import os
import subprocess
import sys

from . import python_version
from .models import repo_root


def _offline_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


def setup(force: bool = False) -> int:
    """Check the Python version, then build (or verify) the course models."""
    python_version.check(python_version.COURSE)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
    from .provision import prepare

    prepare(force=force)
    print("The course is ready. Start it with:  course lab")
    return 0


def lab(port: int | None = None, no_browser: bool = False) -> int:
    """Start JupyterLab on the course's notebooks (like ``make lab``)."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print('JupyterLab is not installed here. Install it with:  pip install -e ".[lab]"', file=sys.stderr)
        return 1
    root = repo_root()
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
           "--LabApp.default_url=/lab/tree/notebooks", "--ip=127.0.0.1"]
    if port:
        cmd.append(f"--port={port}")
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    print("Starting JupyterLab; stop it with Ctrl+C.", flush=True)
    try:
        return subprocess.call(cmd, cwd=root, env=_offline_env())
    except KeyboardInterrupt:
        return 0


DEV_MODULES = ("pytest", "nbval", "xdist", "hypothesis")


def test(quick: bool = False, pytest_args: list[str] | None = None) -> int:
    """The exercises-in-sync check, then pytest like ``make test`` (``quick``: ``make test-quick``)."""
    python_version.check(python_version.PINS, "`course test` (the tested pins and the grader)")
    import importlib.util

    missing = [m for m in DEV_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        print(f"course test needs the authors' tools ({', '.join(missing)} missing). Install them with:\n"
              '  pip install -c requirements.txt -e ".[dev]"', file=sys.stderr)
        return 1
    root = repo_root()
    env = _offline_env(OMP_NUM_THREADS="1")
    code = subprocess.call([sys.executable, "-m", "helpers", "exercises", "build", "--check"], cwd=root, env=env)
    if code:
        return code
    pytest_args = list(pytest_args or [])
    # paths given (tests/test_x.py, notebooks/00_environment_check.ipynb, a::node id) replace the default ones
    named_paths = any(not a.startswith("-") and (root / a.split("::")[0]).exists() for a in pytest_args)
    cmd = [sys.executable, "-m", "pytest"]
    if quick:
        cmd += ([] if named_paths else ["tests"]) + ["-m", "not slow"]
    cmd += ["-n", os.environ.get("TEST_WORKERS", "auto"), "--dist", "loadfile",
            f"--durations={5 if quick else 10}", *pytest_args]
    print("running:", " ".join(cmd[1:]), flush=True)
    return subprocess.call(cmd, cwd=root, env=env)
