"""Lesson 06's measuring tools for bitsandbytes models: one readable call each.

The notebooks call ``from_pretrained``, ``BitsAndBytesConfig`` and peft themselves;
these functions only measure. Read any of them with ``quant_state_bytes??``.

* ``quant_state_bytes(model)``        - the scales bnb keeps next to the packed weights
* ``state_bytes(weight)``             - the same for one 4-bit weight (the roofline of helpers.speed uses it)
* ``quantized_weights(model)``        - how many weights sit in 4-bit layers (logical count)
* ``bits_per_quantized_weight(model)``- measured bits per 4-bit weight, scales included
* ``is_repacked(model)``              - did bnb repack the 4-bit weights for its fused CPU kernel?
* ``generic_4bit_path(model)``        - run 4-bit layers through the generic (trainable) path
* ``layer_step_seconds(...)``         - time one forward + backward through one 4-bit layer
* ``timed(fn, device)``               - call ``fn()`` and time it (waits for a GPU to finish)
* ``release_memory()``                - after ``del model``: hand the freed memory back (from helpers.memory)
* ``synchronize(device)``             - wait for a GPU to finish (from helpers.device)
"""

from __future__ import annotations

import contextlib
import time

import torch

# lesson 06 calls these as quantization.synchronize(...) and quantization.release_memory()
from .device import synchronize  # noqa: F401
from .memory import release_memory  # noqa: F401


def _linear4bit():
    import bitsandbytes as bnb
    return bnb.nn.Linear4bit


def state_bytes(weight) -> int:
    """Bytes of one 4-bit weight's quantization state: per-block scales (absmax), the code table,
    and with double quantization the scales' own scales, code table and offset. 0 for other weights."""
    qs = getattr(weight, "quant_state", None)
    if qs is None:
        return 0
    tensors = [qs.absmax, qs.code]
    if getattr(qs, "nested", False):
        tensors += [qs.state2.absmax, qs.state2.code, qs.offset]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def quant_state_bytes(model) -> int:
    """Bytes of the quantization state (per-block scales, code tables) of every 4-bit and 8-bit layer.

    ``model.get_memory_footprint()`` counts parameters and buffers only; these tensors are
    neither (they hang off each weight's ``quant_state``), so add them for the real size.
    """
    import bitsandbytes as bnb
    total = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            total += state_bytes(module.weight)
        elif isinstance(module, bnb.nn.Linear8bitLt):
            scb = module.weight.SCB if module.weight.SCB is not None else module.state.SCB  # one scale per row
            total += scb.numel() * scb.element_size()
    return total


def quantized_weights(model) -> int:
    """Number of weights held in ``Linear4bit`` layers (in x out each: the logical count, not packed bytes)."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, _linear4bit()))


def bits_per_quantized_weight(model) -> float:
    """Measured storage per 4-bit weight: 8 x (packed bytes + quantization state) / number of weights."""
    packed = sum(m.weight.numel() * m.weight.element_size() for m in model.modules()
                 if isinstance(m, _linear4bit()))
    return 8 * (packed + quant_state_bytes(model)) / quantized_weights(model)


def is_repacked(model) -> bool:
    """True when bnb has repacked 4-bit weights for its fused CPU kernel (``quant_state.packing_format_for_cpu``).

    bitsandbytes 0.50 does this on CPUs with avx512_bf16, the first time a 4-bit layer runs in
    eval mode without gradients. That kernel has no backward pass (lesson 06b).
    """
    return any(getattr(m.weight.quant_state, "packing_format_for_cpu", False)
               for m in model.modules() if isinstance(m, _linear4bit()))


@contextlib.contextmanager
def generic_4bit_path(model):
    """Inside ``with``, generate through bnb's generic (dequantize-then-matmul) 4-bit path.

    The model is in eval mode (no dropout) except its ``Linear4bit`` layers, which stay in
    training mode: on an avx512_bf16 CPU that keeps bnb 0.50 from repacking their weights for
    its fused inference kernel, which has no backward pass (lesson 06b). Every module's
    train/eval flag is restored afterwards, so the model is left exactly as it was.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    for m, _ in flags:
        if isinstance(m, _linear4bit()):
            m.train()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def timed(fn, device="cpu"):
    """Return ``(fn(), seconds)``; on a GPU, waits for the work to finish before reading the clock."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start


def layer_step_seconds(weight: torch.Tensor, compute_dtype: torch.dtype, tokens: int = 208,
                       device="cpu", repeats: int = 3) -> tuple[float, float]:
    """Best-of-``repeats`` (forward, backward) seconds through one nf4 layer, as QLoRA training runs it.

    ``weight`` (out x in) is quantized to nf4 as ``Linear4bit`` stores it; a batch of ``tokens``
    random activations goes through ``bnb.matmul_4bit`` (what ``Linear4bit.forward`` calls in
    training) in ``compute_dtype``, then backward to the activations.
    """
    import bitsandbytes as bnb
    packed, state = bnb.functional.quantize_4bit(weight.detach().to(device), quant_type="nf4")
    x = torch.randn(tokens, weight.shape[1], device=device)
    forward, backward = [], []
    for _ in range(repeats):
        xin = x.clone().requires_grad_(True)
        out, fw = timed(lambda: bnb.matmul_4bit(xin.to(compute_dtype), packed.t(), quant_state=state), device)
        _, bw = timed(lambda: out.float().square().mean().backward(), device)
        forward.append(fw)
        backward.append(bw)
    return min(forward), min(backward)
