"""What is this machine, and what is this model? Two read-only reports.

* :func:`environment_report` - library versions, GPU/MPS and bf16 support, RAM
  and disk, the Hugging Face cache and offline setting, and which course models
  are prepared and verified.
* :func:`describe` - a model's class, parameter count, dtypes, device(s) and
  memory footprint, using what transformers already provides
  (``num_parameters()``, ``get_memory_footprint()``, ``hf_device_map``).
"""

from __future__ import annotations

import collections
import importlib.metadata
import os
import platform
import shutil
from pathlib import Path

import psutil
import torch

from . import device as _device
from . import models as _models
from .machine import cpu_has_bf16_instructions, cpu_model

GIB = 1024**3


def package_version(package: str) -> str:
    """The installed version of ``package``, or "not installed"."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# What the lessons import, and whose version changes what they show. Everything else (the test and
# hub tools, their dependencies) is left out of the report: a different version there changes no lesson.
LESSON_PACKAGES = ("torch", "transformers", "accelerate", "bitsandbytes", "peft", "huggingface_hub",
                   "safetensors", "tokenizers", "numpy", "matplotlib", "ipywidgets", "ipykernel")


def _name(requirement: str) -> str:
    import re
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("-", "_")


def tested_range() -> dict[str, tuple[str | None, str | None]]:
    """``{package: (lower bound, pin)}`` for :data:`LESSON_PACKAGES`: the versions the course is tested with.

    The lower bound is the ``>=`` of ``pyproject.toml``'s ``dependencies`` (tested on Colab's
    versions by ``make test-colab``); the pin is ``requirements.txt``'s ``==`` (tested by
    ``make test``). Either is ``None`` where it is not known (a course installed without its
    source folder has no ``requirements.txt``).
    """
    import re
    root = _models.repo_root()
    requirements = []
    try:
        import tomllib
        requirements = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    except (ImportError, OSError, KeyError, ValueError):
        try:
            requirements = importlib.metadata.requires("causal-lm-course") or []
        except importlib.metadata.PackageNotFoundError:
            pass
    lower = {}
    for req in requirements:
        m = re.search(r">=\s*([^,;\s]+)", req)
        if m:
            lower[_name(req)] = m.group(1)
    pins = {}
    req_txt = root / "requirements.txt"
    if req_txt.is_file():
        for line in req_txt.read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
            if m:
                pins[_name(m.group(1))] = m.group(2)
    return {p: (lower.get(p), pins.get(p)) for p in LESSON_PACKAGES}


def outside_tested_range() -> dict[str, str]:
    """The lesson packages whose installed version lies outside :func:`tested_range`, each with why.

    ``{}`` when every one is installed and ``lower bound <= version <= pin`` (a local build tag
    such as ``+cpu`` or ``+cu128`` is ignored). A version past the pin usually works, but the
    lessons' printed messages and warnings may then differ from the ones stored in them.
    """
    from packaging.version import InvalidVersion, Version

    out = {}
    for package, (low, pin) in tested_range().items():
        have = package_version(package)
        if have == "not installed":
            out[package] = "not installed"
            continue
        try:
            v = Version(Version(have).base_version)
            if low and v < Version(low):
                out[package] = f"{have}: older than the course's minimum {low} (upgrade it)"
            elif pin and v > Version(Version(pin).base_version):
                out[package] = f"{have}: newer than the tested {pin} (messages may differ from the lessons')"
        except InvalidVersion:
            out[package] = f"{have}: not a version number"
    return out


def pin_mismatches() -> dict[str, tuple[str, str]]:
    """Lesson packages whose installed release differs from the exact pin of ``requirements.txt``.

    ``{name: (pinned, installed)}``. Stricter than :func:`outside_tested_range`: a version inside
    the tested range but not the pin shows here (authors use it to check that ``make`` installed
    the pins); learners need only the range.
    """
    out = {}
    for package, (_low, pin) in tested_range().items():
        have = package_version(package)
        if pin and have.split("+")[0] != pin.split("+")[0]:
            out[package] = (pin, have)
    return out


def short_path(path) -> str:
    """A path shown relative to the course folder (``<course>/...``) or home (``~/...``)."""
    from pathlib import Path
    p = Path(path).expanduser().resolve()
    for base, label in ((_models.repo_root(), "<course>"), (Path.home().resolve(), "~")):
        try:
            return f"{label}/{p.relative_to(base)}"
        except ValueError:
            continue
    return str(p)


def environment_report(verify_models: bool = True, show: bool = True) -> dict:
    """Collect (and by default print) what this course needs to know about the machine.

    ``verify_models=True`` re-hashes the prepared course models (about a second).
    Returns the report as a dict of plain values.
    """
    from huggingface_hub import constants as hub

    gpu = {"cuda_available": torch.cuda.is_available()}
    if gpu["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        gpu.update(
            name=props.name,
            count=torch.cuda.device_count(),
            memory_gib=round(props.total_memory / GIB, 1),
            compute_capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            bf16_native=_device.has_native_bf16(0),  # False on a T4/V100, where bf16 is only emulated
            cuda_version=torch.version.cuda,
        )
    mps = getattr(torch.backends, "mps", None)
    gpu["mps_available"] = bool(mps is not None and mps.is_available())
    if gpu["mps_available"]:
        gpu.update(
            macos=".".join(map(str, _device.macos_version() or ())) or "unknown",
            bf16_works=_device.dtype_works_on(torch.bfloat16, "mps"),  # macOS 14 or newer
            bitsandbytes_lists_mps=_device.bitsandbytes_supports("mps"),  # 4-bit on the Apple GPU
        )

    models = {}
    for name in _models.COURSE_MODELS:
        ok, reason = _models.verify(name, full=verify_models)
        models[name] = "verified" if ok else f"NOT READY: {reason}"

    report = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "versions": {p: package_version(p) for p in LESSON_PACKAGES},
        "tested_range": "all within (pyproject.toml's minimum .. requirements.txt's pin)"
                        if not (bad := outside_tested_range()) else bad,
        "gpu": gpu,
        "cpu": {
            "model": cpu_model(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "bf16_instructions": cpu_has_bf16_instructions(),  # None: the OS does not say
        },
        "ram_gib": {
            "total": round(psutil.virtual_memory().total / GIB, 1),
            "available": round(psutil.virtual_memory().available / GIB, 1),
        },
        "disk_free_gib": round(shutil.disk_usage(_models.models_dir().parent).free / GIB, 1),
        "hugging_face": {
            "HF_HOME": short_path(hub.HF_HOME),
            "hub_cache": short_path(hub.HF_HUB_CACHE),
            "HF_HUB_OFFLINE": bool(hub.HF_HUB_OFFLINE),
        },
        "course": {
            "models_dir": short_path(_models.models_dir()),
            "COURSE_MODEL": os.environ.get("COURSE_MODEL", _models.DEFAULT_MODEL),
            "models": models,
            "best_device": _device.best_device(),
            "best_dtype": str(_device.best_dtype()),
        },
    }
    if show:
        print(format_report(report))
    return report


def format_report(report: dict, indent: int = 0) -> str:
    """Render a nested dict as indented ``key: value`` lines."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(format_report(value, indent + 2))
        else:
            lines.append(" " * indent + f"{key}: {value}")
    return "\n".join(lines)


def describe(model) -> dict:
    """Summarize a loaded model: class, parameters, dtypes, placement, memory.

    * ``parameters`` - ``model.num_parameters()`` (tied weights counted once);
    * ``dtypes`` - how many parameter *tensors* have each dtype (a 4-bit model
      shows ``torch.uint8`` for its packed weights);
    * ``device`` - ``model.device`` (where the inputs must go);
    * ``hf_device_map`` - only present when accelerate spread the model over
      more than one device, or offloaded part of it;
    * ``memory_footprint_mib`` - ``model.get_memory_footprint()`` (parameters
      and buffers), in MiB.
    """
    dtypes = collections.Counter(str(p.dtype) for p in model.parameters())
    info = {
        "class": type(model).__name__,
        "model_type": getattr(model.config, "model_type", None),
        "parameters": model.num_parameters(),
        "dtypes": dict(sorted(dtypes.items())),
        "device": str(model.device),
    }
    if getattr(model, "hf_device_map", None) is not None:
        info["hf_device_map"] = dict(model.hf_device_map)
    quant = getattr(model.config, "quantization_config", None)
    if quant is not None:
        method = getattr(quant, "quant_method", None) or quant.get("quant_method")
        info["quantization"] = str(getattr(method, "value", method))
    info["memory_footprint_mib"] = round(model.get_memory_footprint() / 2**20, 1)
    return info
