"""Checks for exercises/03_dtypes.ipynb: what the dtype does to memory and to the outputs."""

from __future__ import annotations

import functools

import torch

from ..checking import Question, expect, numbered
from ..dtypes import DTYPES
from .common import as_dtype, as_number, expect_course_model, load_course_model, reference_model, reference_tokenizer

NOTEBOOK = "03_dtypes.ipynb"
PROMPT = "Water boils at"
RATIO_TOL = 1e-3       # q1: absolute tolerance on the memory ratio
DIFF_REL_TOL = 0.05    # q2: relative tolerance on the max logit difference, reference computed on the answer's device
# q2, when the answer's device is not on the checking machine (a GPU answer judged on a CPU): the reference is
# computed on the CPU and this wider tolerance applies. It is twice the largest spread measured on a CPU between
# ways of computing the same float16 logits: linear layers accumulating in float32 and rounding once (what GPU
# tensor cores do) +13.6 %, a float32 load then .to(float16) +5.7 %, eager attention +1.2 %. No GPU
# measurement of this number is on record; a check on the answer's own device needs none.
OTHER_DEVICE_REL_TOL = 0.25
BYTES_TOL = 0.01       # q4: absolute tolerance on bytes per parameter


def _compute_device(device) -> tuple[str, bool]:
    """Where to compute q2's reference for a model that was on ``device``: ``(device, True)`` when this
    machine has that device, else ``("cpu", False)`` (judged with ``OTHER_DEVICE_REL_TOL``)."""
    kind = getattr(device, "type", None)
    if kind == "cpu":
        return "cpu", True
    try:
        if kind == "cuda" and torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count():
            return f"cuda:{device.index or 0}", True
        mps = getattr(torch.backends, "mps", None)
        if kind == "mps" and mps is not None and mps.is_available():
            return "mps", True
    except (RuntimeError, AssertionError):  # a driver that cannot answer: judge on the CPU
        pass
    return "cpu", False


@functools.lru_cache(maxsize=None)
def _load_stats(dtype_name: str, device: str = "cpu", route: str = "direct") -> dict:
    """Footprint and logit differences vs float32 (on the CPU) of the course model in ``dtype_name`` on ``device``.

    ``route`` is how the 16-bit copy is made: ``"direct"`` (``from_pretrained(dtype=...)``) or ``"cast"``
    (a float32 load, then ``.to(dtype)``, which also rounds the rotary buffers). Only numbers are cached:
    the 16-bit model itself is freed when this returns.
    """
    ref, tok = reference_model(), reference_tokenizer()
    if route == "cast":
        model = load_course_model(torch.float32).to(DTYPES[dtype_name])
    else:
        model = load_course_model(DTYPES[dtype_name])
    model = model.to(device)
    enc = tok(PROMPT, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**enc.to(device)).logits.float().cpu()
        diff = (logits - ref(**tok(PROMPT, return_tensors="pt")).logits.float()).abs()
    return {"footprint": model.get_memory_footprint(), "n_params": model.num_parameters(),
            "max": diff.max().item(), "mean": diff.mean().item(), "max_last": diff[0, -1].max().item()}


@functools.lru_cache(maxsize=None)
def _auto_dtype() -> torch.dtype:
    return load_course_model("auto").dtype


def _close(value: float, want: float, rel: float = 0.0, abs_: float = 0.0) -> bool:
    return abs(value - want) <= max(rel * abs(want), abs_)


def _check_q1(bf16_model, bf16_memory_ratio):
    expect_course_model(bf16_model, "bf16_model")
    dtypes = set(bf16_model.dtypes)
    expect(dtypes == {torch.bfloat16},
           f"`bf16_model` has weights in {sorted(map(str, dtypes))}, not bfloat16: pass `dtype=` to from_pretrained")
    ratio = as_number(bf16_memory_ratio, "bf16_memory_ratio")
    expect(bf16_model.memory_footprint > 0, "`bf16_model` reports no memory footprint: load it with from_pretrained")
    want = bf16_model.memory_footprint / reference_model().get_memory_footprint()
    expect(not _close(ratio, 1 / want, rel=0.01),
           "the ratio is upside down: divide the bf16 footprint by the float32 footprint")
    expect(_close(ratio, want, abs_=RATIO_TOL),
           "that is not the ratio of the two measured footprints: use get_memory_footprint() of "
           "`bf16_model` and of the float32 `model` (bf16 footprint / float32 footprint)")


def _check_q2(fp16_model, max_logit_diff):
    expect_course_model(fp16_model, "fp16_model")
    dtypes = set(fp16_model.dtypes)
    expect(dtypes == {torch.float16},
           f"`fp16_model` has weights in {sorted(map(str, dtypes))}, not float16: pass dtype=torch.float16 to "
           "from_pretrained")
    value = as_number(max_logit_diff, "max_logit_diff")
    expect(value >= 0, "a largest *absolute* difference cannot be negative: take .abs() before .max()")
    device, here = _compute_device(fp16_model.device)
    tol = DIFF_REL_TOL if here else OTHER_DEVICE_REL_TOL
    refs = [_load_stats("float16", device, route) for route in ("direct", "cast")]  # either way of making the copy
    if any(_close(value, ref["max"], rel=tol, abs_=1e-3) for ref in refs):
        return
    stats = refs[0]
    expect(value > 1e-6, "a difference of 0 means you compared a model with itself (or two float32 "
                         "models): load one copy with dtype=torch.float16")
    expect(not _close(value, stats["mean"], rel=tol),
           "that looks like the mean difference: the question asks for the largest one (.max())")
    expect(not _close(value, stats["max_last"], rel=tol),
           "that is the largest difference at the last position only: compare the logits at every "
           "position of the prompt")
    expect(not _close(value, _load_stats("bfloat16", device)["max"], rel=tol),
           "that is the difference for bfloat16: the question asks for float16")
    where = (f"computed on {device}, where `fp16_model` is" if here else
             f"`fp16_model` is on {fp16_model.device}, which this machine does not have: compared with the CPU's "
             f"value, within {OTHER_DEVICE_REL_TOL:.0%}")
    expect(False, f"that is not the largest |float16 - float32| logit difference on {PROMPT!r} ({where}): run "
                  "`fp16_model` and the float32 `model` on the same tokenized prompt, subtract the logits, "
                  "take .abs().max()")


def _check_q3(auto_dtype):
    if isinstance(auto_dtype, str) and auto_dtype.strip().lower() == "auto":
        expect(False, '"auto" is what you pass to from_pretrained; the question asks which dtype it '
                      "resolves to: look at the loaded model's .dtype")
    dtype = as_dtype(auto_dtype)
    expect(dtype is not None, "`auto_dtype` should be a torch dtype (like torch.float16) or its name")
    expect(dtype == _auto_dtype(),
           f"{dtype} is not what dtype=\"auto\" gives for the course checkpoint: load it with dtype=\"auto\" "
           "and read model.dtype (or the `dtype` field of its config.json)")


def _check_q4(fp16_bytes_per_param):
    value = as_number(fp16_bytes_per_param, "fp16_bytes_per_param")
    stats = _load_stats("float16", "cpu", "direct")  # the same cache entry as q2 on a CPU answer
    want = stats["footprint"] / stats["n_params"]
    expect(not _close(value, 8 * want, rel=0.01), "that is bits per parameter: divide by 8 for bytes")
    expect(not _close(value, 2 * want, rel=0.01),
           "that is the size of a float32 parameter: load the model with dtype=torch.float16")
    expect(_close(value, want, abs_=BYTES_TOL),
           "that is not bytes per parameter of the float16 model: divide get_memory_footprint() "
           "by num_parameters()")


def _check_q5(eager_model):
    expect_course_model(eager_model, "eager_model")
    impl = eager_model.attn_implementation
    expect(impl == "eager",
           f"`eager_model` uses the {impl!r} attention implementation: pass attn_implementation= to "
           "from_pretrained")


q1, q2, q3, q4, q5 = QUESTIONS = numbered(
    Question("load the course model in bfloat16 and measure its memory against float32",
        ["bf16_model", "bf16_memory_ratio"], _check_q1,
        hints=["from_pretrained takes `dtype=`; `model` in the setup cell is the float32 copy.",
               "model.get_memory_footprint() gives bytes; divide the bf16 one by the float32 one.",
               "bf16_model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16); "
               "bf16_memory_ratio = bf16_model.get_memory_footprint() / model.get_memory_footprint()"]),
    Question(f"find the largest logit difference between float16 and float32 on {PROMPT!r}",
        ["fp16_model", "max_logit_diff"], _check_q2,
        hints=["Load a float16 copy as `fp16_model`, and run both it and the float32 `model` on "
               "tokenizer(PROMPT, return_tensors='pt') (moved to `fp16_model.device` for the float16 copy).",
               "Compare .logits of the two outputs at every position: subtract (on the CPU, as float32), take the "
               "absolute value, then the max.",
               "fp16_model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float16); enc = "
               "tokenizer(PROMPT, return_tensors='pt'); max_logit_diff = (fp16_model(**enc).logits.float() - "
               "model(**enc).logits).abs().max().item()  (inside torch.no_grad())"]),
    Question('name the dtype that dtype="auto" picks for the course checkpoint', ["auto_dtype"], _check_q3,
        hints=['"auto" reads the checkpoint: which dtype is written in its config.json?',
               'Load with dtype="auto" and look at model.dtype, or read AutoConfig.from_pretrained(MODEL).dtype.',
               'auto_dtype = AutoModelForCausalLM.from_pretrained(MODEL, dtype="auto").dtype']),
    Question("measure the bytes per parameter of the course model in float16", ["fp16_bytes_per_param"], _check_q4,
        hints=["Load the model with dtype=torch.float16.",
               "get_memory_footprint() is in bytes; num_parameters() counts the parameters.",
               "m = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float16); "
               "fp16_bytes_per_param = m.get_memory_footprint() / m.num_parameters()"]),
    Question("load the course model with the eager attention implementation", ["eager_model"], _check_q5,
        hints=["The default attention implementation is 'sdpa'; from_pretrained has an argument to choose another.",
               "Check with model.config._attn_implementation.",
               'eager_model = AutoModelForCausalLM.from_pretrained(MODEL, attn_implementation="eager")']),
    notebook=NOTEBOOK,
)
