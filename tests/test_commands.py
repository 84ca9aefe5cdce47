"""The make-free path: ``course setup | lab | test`` (helpers/commands.py) run what the Makefile runs.

The commands they start are captured, not run (JupyterLab, the suite); ``course setup`` and
``course test --quick`` run for real in CI's fresh virtual environment (.ci/run).
"""

import subprocess
import sys

import pytest

from helpers import commands
from helpers.__main__ import main
from helpers.models import repo_root


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def call(cmd, cwd=None, env=None):
        seen.append({"cmd": cmd, "cwd": cwd, "env": env})
        return 0
    monkeypatch.setattr(subprocess, "call", call)
    return seen


def test_course_lab_starts_jupyterlab_on_the_notebooks_like_make_lab(calls, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert main(["lab", "--port", "8899", "--no-browser"]) == 0
    (run,) = calls
    assert run["cmd"][:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={repo_root()}" in run["cmd"]
    assert "--LabApp.default_url=/lab/tree/notebooks" in run["cmd"]
    assert {"--port=8899", "--no-browser", "--ip=127.0.0.1"} <= set(run["cmd"])
    assert run["env"]["HF_HUB_OFFLINE"] == "1"


def test_course_test_checks_the_exercises_then_runs_pytest_like_make_test(calls):
    assert main(["test"]) == 0
    check, suite = calls
    assert check["cmd"] == [sys.executable, "-m", "helpers", "exercises", "build", "--check"]
    assert suite["cmd"][:3] == [sys.executable, "-m", "pytest"]
    assert suite["cmd"][3:] == ["-n", "auto", "--dist", "loadfile", "--durations=10"]
    assert suite["env"]["OMP_NUM_THREADS"] == "1" and suite["cwd"] == repo_root()


def test_course_test_quick_is_make_test_quick_and_passes_pytest_arguments_on(calls):
    assert main(["test", "--quick", "-k", "device", "-x"]) == 0
    suite = calls[-1]["cmd"]
    assert suite[3:6] == ["tests", "-m", "not slow"]
    assert suite[-3:] == ["-k", "device", "-x"]


def test_course_test_quick_with_paths_runs_only_those(calls):
    assert main(["test", "--quick", "tests/test_device.py", "notebooks/00_environment_check.ipynb"]) == 0
    suite = calls[-1]["cmd"]
    assert "tests" not in suite and suite[3:5] == ["-m", "not slow"]
    assert suite[-2:] == ["tests/test_device.py", "notebooks/00_environment_check.ipynb"]


def test_course_test_without_the_dev_extra_says_what_to_install(calls, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nbval" else real(name, *a))
    assert main(["test"]) == 1
    assert calls == []
    assert 'pip install -c requirements.txt -e ".[dev]"' in capsys.readouterr().err


def test_other_commands_refuse_unknown_arguments():
    with pytest.raises(SystemExit):
        main(["env", "--quick"])


def test_course_setup_builds_the_models(monkeypatch, capsys):
    import helpers.provision

    built = []
    monkeypatch.setattr(helpers.provision, "prepare", lambda force=False: built.append(force))
    assert main(["setup"]) == 0
    assert built == [False]
    assert "course lab" in capsys.readouterr().out


def test_course_setup_on_a_too_old_python_stops_first(monkeypatch, capsys):
    import helpers.provision

    monkeypatch.setattr(helpers.provision, "prepare", lambda force=False: pytest.fail("prepare ran"))
    monkeypatch.setattr(commands.python_version.sys, "version_info", (3, 9, 18, "final", 0))
    with pytest.raises(SystemExit) as stop:
        commands.setup()
    assert stop.value.code == 1
    assert "needs Python 3.10 or newer; this is Python 3.9.18" in capsys.readouterr().err


def test_the_console_script_is_course():
    import tomllib

    scripts = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"course": "helpers.__main__:main"}
