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


def pin_mismatches() -> dict[str, tuple[str, str]]:
    """Packages whose installed version differs from ``requirements.txt``: ``{name: (pinned, installed)}``."""
    import re
    req = _models.repo_root() / "requirements.txt"
    if not req.is_file():
        return {}
    out = {}
    for line in req.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            installed = package_version(m.group(1))
            # a local build tag such as +cpu or +cu126 is the same release
            if installed.split("+")[0] != m.group(2).split("+")[0]:
                out[m.group(1)] = (m.group(2), installed)
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

    models = {}
    for name in _models.COURSE_MODELS:
        ok, reason = _models.verify(name, full=verify_models)
        models[name] = "verified" if ok else f"NOT READY: {reason}"

    report = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "versions": {p: package_version(p) for p in (
            "torch", "transformers", "accelerate", "bitsandbytes", "peft",
            "huggingface_hub", "safetensors", "gguf")},
        "pins": "all match requirements.txt" if not (bad := pin_mismatches()) else
                {name: f"pinned {want}, installed {have}" for name, (want, have) in bad.items()},
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
