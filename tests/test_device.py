"""best_device() / best_dtype(): the dtype a device really computes in, checked on simulated GPUs."""

import pytest
import torch

from helpers import best_device, best_dtype
from helpers.device import has_native_bf16


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA GPU of the given compute capability, as far as helpers.device can tell."""
    def install(capability):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        # what torch answers on a T4 by default: bf16 "supported" (emulated)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
        monkeypatch.setattr(torch.version, "hip", None)
    return install


@pytest.mark.parametrize("gpu, capability, want", [
    ("T4 (Colab free tier)", (7, 5), torch.float16),
    ("V100", (7, 0), torch.float16),
    ("A100", (8, 0), torch.bfloat16),
    ("L4 / RTX 40xx", (8, 9), torch.bfloat16),
    ("H100 / H200", (9, 0), torch.bfloat16),
])
def test_best_dtype_on_a_gpu_follows_native_bf16_support(fake_gpu, gpu, capability, want):
    fake_gpu(capability)
    assert best_device() == "cuda"
    assert best_dtype() == want, gpu
    assert has_native_bf16() is (want == torch.bfloat16)


def test_a_t4_gets_float16_although_torch_says_bf16_is_supported(fake_gpu):
    fake_gpu((7, 5))  # as on a real T4, torch.cuda.is_bf16_supported() says True: emulation counts by default
    assert best_dtype("cuda") == torch.float16


def test_cpu_and_mps_dtypes():
    assert best_dtype("cpu") == torch.float32
    assert best_dtype("mps") == torch.float16
