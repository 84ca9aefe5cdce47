"""How fast does a model generate on this machine, and how fast could it? One call each.

* ``decode_speed(model, tokenizer, ...)`` - times greedy ``generate()`` on the model's own
  device and returns a :class:`Speed`: the prefill (prompt + first token) and the decode rate
  (new tokens per second after the first, all rows of the batch together), next to the
  memory-bandwidth **roofline**.
* ``memory_bandwidth(device)`` - bytes per second this device reads (a big ``sum``).
* ``bytes_per_token(model)`` - weight bytes one decode step must read.

Why a roofline: decoding one token at batch 1 must read every weight once, so
``tokens/s <= bandwidth / weight bytes``. How close a run gets says where the time goes:
near the roofline, memory is the limit (a smaller dtype helps); far below it, something
else is (on a GPU: launching hundreds of small kernels per token, and Python between them;
on a CPU: arithmetic, or a dtype without fast kernels). Lessons 03 and 04 use these; the
benchmark (``make bench``) too. Nothing here asserts a speed.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

from .device import synchronize as _sync
from .quantization import state_bytes

PROMPT = "Explain in two sentences what a language model does."


def bytes_per_token(model) -> int:
    """Weight bytes one decode step must read: the numerator of the roofline.

    Each parameter counts once, even when tied. A parameter that belongs only to
    ``nn.Embedding`` modules is a lookup: one row per token. Everything else (linear
    layers, norms, and a lm_head tied to the embedding, whose matmul reads the whole
    matrix) counts in full. A bitsandbytes 4-bit weight counts its packed bytes plus its
    quantization state. Buffers and the KV cache are left out (about 1 % here).
    """
    owners: dict[int, tuple] = {}  # id(param) -> (param, [module, ...])
    for module in model.modules():
        for param in module.parameters(recurse=False):
            owners.setdefault(id(param), (param, []))[1].append(module)
    total = 0
    for param, modules in owners.values():
        if all(isinstance(m, torch.nn.Embedding) for m in modules):
            total += param.shape[-1] * param.element_size()
        else:
            total += param.numel() * param.element_size() + state_bytes(param)
    return total


@functools.lru_cache(maxsize=None)
def memory_bandwidth(device: str | torch.device = "cpu", gib: float = 0.25, repeats: int = 5) -> float:
    """Bytes per second read on ``device``: the best of ``repeats`` sums of a ``gib`` GiB tensor.

    Measured once per device and process (the result is cached): 0.25 GiB is far bigger than
    any CPU cache or GPU L2, and small enough not to matter next to a model.
    """
    device = torch.device(device)
    x = torch.ones(int(gib * 2**30) // 4, dtype=torch.float32, device=device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first sum is a warm-up
        _sync(device)
        start = time.perf_counter()
        x.sum()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    nbytes = x.numel() * x.element_size()
    del x
    return nbytes / best


@dataclass
class Speed:
    """What :func:`decode_speed` measured (seconds and tokens per second)."""

    device: str
    dtype: str
    batch: int
    new_tokens: int
    prefill_s: float      # prompt + first new token
    decode_tok_s: float   # new tokens per second after the first, all rows together
    roofline_tok_s: float  # batch 1 bound: bandwidth / weight bytes (per row of the batch)
    warmup_s: float = 0.0  # the first call: start-up costs, compilation where generate compiles

    @property
    def of_roofline(self) -> float:
        """Decode rate per row as a fraction of the roofline (1.0 = memory-bound at full speed)."""
        return self.decode_tok_s / self.batch / self.roofline_tok_s

    def __str__(self) -> str:
        return (f"{self.device} {self.dtype}, batch {self.batch}: prefill {self.prefill_s * 1000:.0f} ms, "
                f"decode {self.decode_tok_s:.1f} tok/s ({self.of_roofline:.0%} of the {self.roofline_tok_s:.0f} "
                "tok/s roofline per row)")


class _StepClock:
    """A ``generate()`` streamer that notes the time each step's tokens are ready (no text)."""

    def __init__(self):
        self.times: list[float] = []

    def put(self, value) -> None:  # first the prompt, then the new tokens of each step
        value.cpu()  # waits for the device to finish the step that produced them
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def decode_speed(model, tokenizer, prompt: str = PROMPT, new_tokens: int = 16, batch: int = 1,
                 repeats: int = 2, bandwidth: float | None = None, **generate_kwargs) -> Speed:
    """Time greedy ``model.generate()`` on the model's device; prefill and decoding apart.

    The prompt is repeated ``batch`` times (so no padding). A streamer notes when each
    step's tokens are ready: the prefill is the time to the first new token, the decode rate
    is ``batch x (N - 1)`` tokens over the time from the first to the last of the N new
    tokens. One warm-up call first (CUDA start-up; compilation, where ``generate`` compiles),
    then the best of ``repeats`` calls. ``generate_kwargs`` go to ``generate`` as they are
    (e.g. ``cache_implementation="static"``). ``bandwidth`` (bytes/s) defaults to
    :func:`memory_bandwidth` of the model's device.
    """
    device = model.device
    enc = tokenizer([prompt] * batch, return_tensors="pt").to(device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prefill, decode = [], []
    with torch.inference_mode():
        for attempt in range(repeats + 1):
            clock, start = _StepClock(), time.perf_counter()
            model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                           pad_token_id=pad, streamer=clock, **generate_kwargs)
            if not attempt:  # the first call is the warm-up
                warmup = clock.times[-1] - start
            else:
                prompt_in, first, last = clock.times[0], clock.times[1], clock.times[-1]
                prefill.append(first - prompt_in)
                decode.append(last - first)
    bandwidth = bandwidth or memory_bandwidth(str(device))
    return Speed(device=str(device), dtype=str(model.dtype).removeprefix("torch."), batch=batch,
                 new_tokens=new_tokens, prefill_s=min(prefill),
                 decode_tok_s=batch * (new_tokens - 1) / min(decode),
                 roofline_tok_s=bandwidth / bytes_per_token(model), warmup_s=warmup)
