"""The course off this Linux box: Windows and a Mac simulated, the way tests/test_device.py simulates a T4.

* Windows refuses symbolic links without Developer Mode (``OSError`` 1314): ``link_or_copy`` falls
  back to a hard link, then a copy, and the lessons' cells that used ``symlink_to`` still work;
  no notebook code cell uses a symlink, ``SIGALRM`` or ``/proc``.
* A Mac with MPS: ``best_device()`` is ``mps``, ``best_dtype()`` float16; bfloat16 only from
  macOS 14 on, float64 never; bitsandbytes 0.50 lists ``mps``; lesson 00's report says so.
* The environment report lists the lesson packages against the tested range, nothing else.
* The Python minimum: ``make setup`` on Python 3.10 and ``python -m helpers`` on 3.9 stop with one
  message naming the minimum (pyenv's interpreters; skipped where absent).
"""

import errno
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import device, diagnostics, python_version
from helpers.models import link_or_copy, resolve_model

ROOT = Path(__file__).resolve().parent.parent
REAL_PLATFORM = sys.platform
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))


def refuse_symlinks(monkeypatch):
    """What Windows without Developer Mode answers to a symbolic link."""
    def symlink_to(self, target, target_is_directory=False):
        raise OSError(1314, "A required privilege is not held by the client", str(self))
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(Path, "symlink_to", symlink_to)
    monkeypatch.setattr(os, "symlink", lambda *a, **k: symlink_to(Path(a[1]), a[0]))


def refuse_hardlinks(monkeypatch):
    """What a hard link across volumes (or to a file on a FAT drive) answers."""
    def link(src, dst, *a, **k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    monkeypatch.setattr(os, "link", link)


def code_cell(path: Path, marker: str) -> str:
    cells = [c for c in json.loads(path.read_text())["cells"]
             if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} code cells contain {marker!r}"
    return "".join(cells[0]["source"])


# --------------------------------------------------------------------------- links, Windows

def test_link_or_copy_makes_a_symlink_where_allowed(tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(b"0123")
    assert link_or_copy(src, tmp_path / "a") == "symlink"
    assert (tmp_path / "a").is_symlink() and (tmp_path / "a").read_bytes() == b"0123"


def test_on_windows_without_developer_mode_it_hard_links_then_copies(tmp_path, monkeypatch):
    src = tmp_path / "weights.bin"
    src.write_bytes(b"0123")
    refuse_symlinks(monkeypatch)
    with pytest.raises(OSError) as refused:
        (tmp_path / "x").symlink_to(src)
    assert refused.value.errno == 1314
    assert link_or_copy(src, tmp_path / "hard") == "hardlink"
    assert not (tmp_path / "hard").is_symlink() and (tmp_path / "hard").stat().st_ino == src.stat().st_ino
    refuse_hardlinks(monkeypatch)
    assert link_or_copy(src, tmp_path / "copy") == "copy"
    assert (tmp_path / "copy").read_bytes() == b"0123" and (tmp_path / "copy").stat().st_ino != src.stat().st_ino


def test_link_or_copy_refuses_an_existing_destination_and_a_missing_source(tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(b"0123")
    (tmp_path / "there").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        link_or_copy(src, tmp_path / "there")
    assert (tmp_path / "there").read_bytes() == b"keep"
    with pytest.raises(FileNotFoundError):
        link_or_copy(tmp_path / "missing", tmp_path / "new")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_notebook_code_needs_a_symlink_sigalrm_or_proc(path):
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            for banned in ("symlink_to", "os.symlink", "SIGALRM", "signal.alarm", "/proc/"):
                assert banned not in src, f"{path.name}: a code cell uses {banned}:\n{src}"


@pytest.fixture
def model_copy(tmp_path):
    """A private copy of the tiny model, for the lessons' cells to link to.

    Linking to the course's own models/ would not do: a hard link changes the linked file's inode
    (its ``st_ctime``), which is what the grader's tamper check watches (grading/integrity.py), so a
    grader test running beside this one would stop its batch as if a submission had edited a model.
    """
    copy = tmp_path / "model"
    shutil.copytree(resolve_model("tiny-random-gpt2"), copy)
    return str(copy)


def test_lesson01_hub_cache_demo_loads_by_hub_id_without_symlinks(tmp_path, monkeypatch, model_copy):
    from transformers import AutoModelForCausalLM

    refuse_symlinks(monkeypatch)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    ns = {"MODEL": model_copy}
    exec("import tempfile\nfrom pathlib import Path\nfrom helpers.models import link_or_copy\n", ns)
    exec(code_cell(ROOT / "notebooks" / "01_loading.ipynb", "models--course--"), ns)
    snapshot = next((ns["cache"] / "models--course--smollm2-135m-instruct" / "snapshots").iterdir())
    assert not any(p.is_symlink() for p in snapshot.iterdir())
    monkeypatch.setattr(sys, "platform", REAL_PLATFORM)  # transformers' lazy imports ask it; only the files matter
    model = AutoModelForCausalLM.from_pretrained("course/smollm2-135m-instruct", cache_dir=ns["cache"])
    assert type(model).__name__ == "GPT2LMHeadModel"  # the files of MODEL (the tiny model), found by a Hub id


def test_lesson05_checkpoint_folders_load_without_symlinks(tmp_path, monkeypatch, model_copy):
    from transformers import AutoModelForCausalLM

    refuse_symlinks(monkeypatch)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    ns = {"MODEL": model_copy, "RECIPES": []}
    exec("import shutil, tempfile\nfrom pathlib import Path\nfrom helpers.models import link_or_copy\n", ns)
    exec(code_cell(ROOT / "notebooks" / "05_error_recovery.ipynb", "def checkpoint("), ns)
    folder = ns["checkpoint"]("ok")
    assert not (folder / "model.safetensors").is_symlink()
    monkeypatch.setattr(sys, "platform", REAL_PLATFORM)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.num_parameters() == AutoModelForCausalLM.from_pretrained(model_copy).num_parameters()


# --------------------------------------------------------------------------- a Mac with MPS

@pytest.fixture
def fake_mac(monkeypatch):
    """An Apple-silicon Mac running macOS ``release``, as far as helpers.device can tell."""
    import bitsandbytes  # noqa: F401  (imported on this CPU machine first: its MPS backend is not loaded)

    def install(release):
        monkeypatch.setattr(sys, "platform", "darwin")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        monkeypatch.setattr(platform, "mac_ver", lambda *a: (release, ("", "", ""), "arm64"))
    return install


@pytest.mark.parametrize("release, bf16", [("13.6.1", False), ("14.0", True), ("15.4", True), ("26.1", True)])
def test_a_mac_gets_mps_float16_and_bf16_only_from_macos_14(fake_mac, release, bf16):
    fake_mac(release)
    assert device.best_device() == "mps"
    assert device.best_dtype() == torch.float16  # works on every MPS device
    assert device.dtype_works_on(torch.float16) and device.dtype_works_on(torch.float32)
    assert device.dtype_works_on(torch.bfloat16, "mps") is bf16
    assert device.dtype_works_on(torch.float64, "mps") is False
    assert device.dtype_works_on(torch.bfloat16, "cpu") is True


def test_bitsandbytes_050_lists_mps_and_an_old_one_only_cuda(fake_mac, monkeypatch):
    import bitsandbytes

    fake_mac("14.5")
    assert device.bitsandbytes_supports("mps") and device.bitsandbytes_supports("cpu")
    monkeypatch.delattr(bitsandbytes, "supported_torch_devices")  # releases before the multi-backend list
    assert not device.bitsandbytes_supports("mps") and device.bitsandbytes_supports("cuda")


def test_the_environment_report_on_a_mac(fake_mac):
    fake_mac("13.6")
    gpu = diagnostics.environment_report(verify_models=False, show=False)["gpu"]
    assert gpu == {"cuda_available": False, "mps_available": True, "macos": "13.6",
                   "bf16_works": False, "bitsandbytes_lists_mps": True}


def test_macos_version_elsewhere_is_none(monkeypatch):
    monkeypatch.setattr(platform, "mac_ver", lambda *a: ("", ("", "", ""), ""))
    assert device.macos_version() is None
    monkeypatch.setattr(platform, "mac_ver", lambda *a: ("14", ("", "", ""), "arm64"))
    assert device.macos_version() == (14, 0)


# --------------------------------------------------------------------------- versions against the tested range

def test_report_names_only_lesson_packages_and_flags_what_is_outside_the_range(monkeypatch):
    fake = {"torch": "2.13.0+cu128", "transformers": "5.30.0", "numpy": "1.26.4", "peft": "not installed"}
    real = diagnostics.package_version
    monkeypatch.setattr(diagnostics, "package_version", lambda p: fake.get(p) or real(p))
    ranges = diagnostics.tested_range()
    assert set(ranges) == set(diagnostics.LESSON_PACKAGES)
    assert ranges["torch"] == ("2.11", "2.13.0")
    out = diagnostics.outside_tested_range()
    assert set(out) == {"transformers", "numpy", "peft"}  # torch +cu128 is the tested release
    assert "newer than the tested 5.23.0" in out["transformers"]
    assert "older than the course's minimum 2.1" in out["numpy"]
    assert out["peft"] == "not installed"


def test_this_environment_is_in_the_tested_range():
    """make test, and CI's fresh venv, install the pins: nothing may be flagged (lesson 00 says so)."""
    assert diagnostics.outside_tested_range() == {}


# --------------------------------------------------------------------------- the Python minimum

PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def pyenv_python(minor: str) -> Path:
    found = sorted(PYENV.glob(f"3.{minor}.*/bin/python"))
    if not found:
        pytest.skip(f"no Python 3.{minor} under {PYENV}")
    return found[-1]


def test_make_setup_on_python_310_stops_before_pip_with_the_minimum(tmp_path):
    if not shutil.which("make"):
        pytest.skip("no make")
    py310 = pyenv_python("10")
    run = subprocess.run(["make", "--no-print-directory", "setup", f"PYTHON={py310}", f"VENV={tmp_path / 'venv'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "needs Python 3.11 or newer; this is Python 3.10" in run.stderr
    assert "pip install -e \".[lab]\"" in run.stderr  # the course itself on 3.10
    assert not (tmp_path / "venv").exists(), "the venv was created before the check"


def test_course_command_on_python_39_stops_with_the_minimum():
    py39 = pyenv_python("9")
    run = subprocess.run([str(py39), "-m", "helpers", "setup"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.startswith("This course needs Python 3.10 or newer; this is Python 3.9")
    assert "How to get Python 3.10 or newer" in run.stderr


def test_the_check_runs_on_old_pythons_and_says_new_enough_on_this_one():
    assert python_version.message(version=sys.version_info[:3]) is None
    assert python_version.message(python_version.PINS, version=(3, 10, 13)).count("Python 3.11 or newer") == 2
