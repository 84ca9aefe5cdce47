"""Checks for exercises/05_error_recovery.ipynb: diagnose and fix errors, recover from out-of-memory.

The out-of-memory question uses :func:`helpers.device.put_on_small_gpu`, a *pretend* GPU with
little memory, so that it can be practised on any machine.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..answers import ClassRef, ExceptionRef
from ..checking import Incorrect, Question, expect, numbered
from ..device import SMALL_GPU_MIB
from .common import expect_course_model, reference_model, reference_tokenizer

NOTEBOOK = "05_error_recovery.ipynb"
PROMPT = "The capital of France is"
PROMPTS = ["Paris is", "The tallest mountain in the world is"]
HUB_ID = "course-examples/no-such-model"  # an id that is in no cache
NEW_TOKENS = 4


# --------------------------------------------------------------------------- helpers

def _type_name(value) -> str | None:
    """An exception class, its name ('OSError', 'builtins.OSError') or an exception instance -> the class name."""
    if isinstance(value, ClassRef) and value.is_subclass_of("builtins.BaseException"):
        return value.name.rsplit(".", 1)[-1]
    if isinstance(value, ExceptionRef) and isinstance(value.type, ClassRef):
        return value.type.name.rsplit(".", 1)[-1]
    if isinstance(value, str) and value.strip():
        return value.strip().rsplit(".", 1)[-1]
    return None


def _raised(fn) -> BaseException:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the real error is the reference
        return e
    raise AssertionError("the reference mistake did not raise")


def _reference_errors() -> dict[str, str]:
    """Provoke the three mistakes for real and return the exception class names."""
    from transformers import AutoConfig

    model, tok = reference_model(), reference_tokenizer()
    return {
        "lists_error": type(_raised(lambda: model.generate(**tok(PROMPT), max_new_tokens=1))).__name__,
        # AutoConfig is the first thing from_pretrained loads; local_files_only never waits on the network
        "offline_error": type(_raised(lambda: AutoConfig.from_pretrained(HUB_ID, local_files_only=True))).__name__,
        # 400 TB: more than x86-64 Linux lets a process address, so it fails even where memory is overcommitted
        "cpu_oom_error": type(_raised(lambda: torch.empty(10**14, device="cpu"))).__name__,
    }


def _bytes_per_element(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _expect_weights_in(facts, name: str, dtype: torch.dtype) -> None:
    """Reject a (course) model whose reported dtype and footprint do not match its saved weights.

    The judge reads the first rows of the input embedding: a model whose weights are ``dtype`` holds the
    checkpoint's float32 values rounded to ``dtype``, exactly. get_memory_footprint() of such a model is
    its parameters in ``dtype`` plus its few buffers (rotary frequencies, float32 after from_pretrained,
    ``dtype`` after a cast).
    """
    ref = reference_model()
    rows, want = facts.embedding_rows, ref.get_input_embeddings().weight
    expect(isinstance(rows, torch.Tensor) and rows.dtype == torch.float32 and rows.dim() == 2
           and 0 < rows.shape[0] <= want.shape[0] and rows.shape[1] == want.shape[1]
           and torch.equal(rows, want[: rows.shape[0]].detach().to(dtype).float()),
           f"`{name}`'s weights are not the checkpoint's in {str(dtype).removeprefix('torch.')}: load it with "
           f"from_pretrained(..., dtype={dtype})")
    params = sum(p.numel() for p in ref.parameters())
    buffers = sum(b.numel() for b in ref.buffers())
    size = _bytes_per_element(dtype)
    expect(facts.memory_footprint in (size * params + 4 * buffers, size * (params + buffers)),
           f"`{name}.get_memory_footprint()` is not what the course model takes in "
           f"{str(dtype).removeprefix('torch.')}: check the model itself, not a copy or a number")


# --------------------------------------------------------------------------- checks

def _check_q1(fixed_model):
    expect_course_model(fixed_model, "fixed_model")
    expect(not fixed_model.is_quantized,
           "that is a quantized (4-bit/8-bit) model; the snippet asks for plain bfloat16 weights")
    dtypes = set(fixed_model.dtypes)
    expect(dtypes == {torch.bfloat16},
           f"its weights are {sorted(map(str, dtypes))}: the snippet asks for bfloat16. dtype strings "
           "must be torch's own names (or pass the torch dtype object)")
    _expect_weights_in(fixed_model, "fixed_model", torch.bfloat16)


GENERATE_KEYS = ("input_ids", "attention_mask")   # what the course tokenizer returns, and generate() takes
ID_DTYPES = (torch.int64, torch.int32)            # what an embedding lookup accepts
MASK_DTYPES = (torch.int64, torch.int32, torch.bool, torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_q2(prompt_inputs):
    expect(isinstance(prompt_inputs, Mapping) and "input_ids" in prompt_inputs,
           "`prompt_inputs` should be what the tokenizer returns (a dict-like BatchEncoding with "
           "input_ids), so that generate(**prompt_inputs) works")
    extra = [k for k in prompt_inputs if k not in GENERATE_KEYS]
    expect(not extra, f"`prompt_inputs` has {str(extra[:1])[:60]} besides input_ids and attention_mask: "
                      "generate(**prompt_inputs) refuses arguments the model does not use")
    ids = prompt_inputs["input_ids"]
    expect(isinstance(ids, torch.Tensor),
           f"input_ids is a {type(ids).__name__}, not a tensor: generate() needs tensors")
    expect(ids.dim() == 2 and ids.shape[0] == 1,
           f"input_ids has shape {tuple(ids.shape)}; generate() wants [batch, sequence], here [1, n]")
    expect(ids.dtype in ID_DTYPES, f"input_ids is a {ids.dtype} tensor: token ids are integers (torch.long, "
                                   "as the tokenizer returns them with return_tensors='pt')")
    want = reference_tokenizer()(PROMPT, return_tensors="pt")["input_ids"]
    expect(ids.shape == want.shape and torch.equal(ids.cpu().long(), want),
           "those are not the ids of the prompt given in the question")
    mask = prompt_inputs.get("attention_mask")
    expect(mask is None or (isinstance(mask, torch.Tensor) and mask.shape == ids.shape),
           "attention_mask should be a tensor with the same shape as input_ids")
    if mask is not None:
        expect(mask.dtype in MASK_DTYPES, f"attention_mask is a {mask.dtype} tensor: it holds 1 (attend) and "
                                          "0 (padding), as the tokenizer returns it")
        expect(bool((mask == 1).all()), "attention_mask should be all ones here: one prompt, no padding "
                                        "(keep the mask the tokenizer returns)")
    with torch.no_grad():  # the reference model is on the CPU; the answer may be on a GPU
        inputs = {"input_ids": ids.cpu().long()}
        if mask is not None:
            inputs["attention_mask"] = mask.cpu().long()
        out = reference_model().generate(**inputs, max_new_tokens=1, do_sample=False)
    expect(out.shape[1] == ids.shape[1] + 1, "generate(**prompt_inputs) did not add a token")


def _call_tokenizer(tokenizer, *args, **kwargs):
    """Call the learner's tokenizer; whatever it raises is a verdict on the tokenizer, not a broken check."""
    try:
        return tokenizer(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - any error here comes from the learner's tokenizer settings
        raise Incorrect(f"calling `batch_tokenizer` raised {type(e).__name__}: {str(e)[:120]}") from None


def _expect_encoding(enc, n_rows: int, vocab: int) -> None:
    """A padded batch from the learner's tokenizer: id and mask tensors of one shape, ids the model knows."""
    ids, mask = enc.get("input_ids"), enc.get("attention_mask")
    expect(isinstance(ids, torch.Tensor) and isinstance(mask, torch.Tensor) and ids.dim() == 2
           and ids.shape[0] == n_rows and mask.shape == ids.shape
           and ids.dtype in ID_DTYPES and mask.dtype in MASK_DTYPES,
           "padding=True, return_tensors='pt' should give input_ids and attention_mask tensors of one shape")
    expect(bool(((ids >= 0) & (ids < vocab)).all()), "the padded batch holds token ids the model has no "
                                                     "embedding for")
    expect(bool(((mask == 0) | (mask == 1)).all()), "the attention mask should hold only 0 and 1")


def _check_q3(batch_tokenizer):
    ref_tok, model = reference_tokenizer(), reference_model()
    expect(callable(batch_tokenizer) and hasattr(batch_tokenizer, "padding_side"),
           "`batch_tokenizer` should be a tokenizer (from AutoTokenizer.from_pretrained)")
    hello = _call_tokenizer(batch_tokenizer, "Hello")
    expect(isinstance(hello, Mapping) and hello.get("input_ids") == ref_tok("Hello")["input_ids"],
           "that tokenizer splits text differently from the course tokenizer: start from `tok_nopad`")
    expect(batch_tokenizer.pad_token is not None,
           "it still has no pad token, so padding=True raises: give it one")
    vocab = model.get_input_embeddings().num_embeddings
    pad_id = batch_tokenizer.pad_token_id
    expect(isinstance(pad_id, int) and 0 <= pad_id < vocab,
           "its pad token is a new token the model has no embedding for: reuse an existing token "
           "(the end-of-sequence token is the usual choice)")
    expect(batch_tokenizer.padding_side == "left",
           "it pads on the right: a decoder-only model would continue after the pad tokens")
    enc = _call_tokenizer(batch_tokenizer, PROMPTS, padding=True, return_tensors="pt")
    _expect_encoding(enc, len(PROMPTS), vocab)
    enc = {"input_ids": enc["input_ids"].long(), "attention_mask": enc["attention_mask"].long()}
    short = ref_tok(PROMPTS[0], return_tensors="pt")  # the prompt that gets padded
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=NEW_TOKENS, do_sample=False)
        alone = model.generate(**short, max_new_tokens=NEW_TOKENS, do_sample=False)
    expect(out[0, enc["input_ids"].shape[1]:].tolist() == alone[0, short["input_ids"].shape[1]:].tolist(),
           "a batch padded by this tokenizer does not generate, for the short prompt, what that prompt "
           "generates alone: check the padding side and the attention mask")


def _check_q4(model_fit):
    expect_course_model(model_fit, "model_fit")
    dtypes = set(model_fit.dtypes)
    if not model_fit.is_quantized and len(dtypes) == 1:  # the judge knows what such a model takes
        (dtype,) = dtypes
        _expect_weights_in(model_fit, "model_fit", dtype)
    need = model_fit.memory_footprint
    expect(isinstance(need, int) and need > 0, "`model_fit` reports no memory footprint: check the model itself")
    expect(need <= SMALL_GPU_MIB * 2**20,
           f"`model_fit` needs {need / 2**20:.1f} MiB and does not fit the {SMALL_GPU_MIB} MiB GPU: "
           "put_on_small_gpu(model_fit) raises; take the next rung of the ladder")
    expect(not model_fit.is_quantized,
           "it fits, but you skipped a rung: 4-bit changes the weights, and the cheaper first rung "
           "(a smaller dtype) already fits")
    expect(dtypes <= {torch.bfloat16, torch.float16},
           f"its weights are {sorted(map(str, dtypes))}: the first rung is a 16-bit dtype")


def _check_q5(lists_error, offline_error, cpu_oom_error):
    given = {"lists_error": lists_error, "offline_error": offline_error, "cpu_oom_error": cpu_oom_error}
    for var, value in given.items():
        expect(_type_name(value) is not None,
               f"`{var}` should be an exception class such as ValueError (or its name as a string)")
    seeds = {"lists_error": "TypeError", "offline_error": "ConnectionError", "cpu_oom_error": "OutOfMemoryError"}
    for var, want in _reference_errors().items():
        got = _type_name(given[var])
        expect(got != seeds[var] or got == want,
               f"`{var}`: {got} is what the seed lesson claims; run the mistake (with explained()) "
               "and read the type the pinned libraries really raise")
        expect(got == want, f"`{var}`: {got} is not the type this mistake raises; run it and read the "
                            "first word of the error line")


q1, q2, q3, q4, q5 = QUESTIONS = numbered(
    Question("fix a broken loading snippet (two mistakes)", ["fixed_model"], _check_q1,
        hints=["Run the snippet inside `with explained():` and read the first line. Then list what is in "
               "DOWNLOAD: sorted(p.name for p in DOWNLOAD.iterdir()).",
               "from_pretrained needs the folder that holds config.json. Once the path is right, a second "
               "error appears: read it too.",
               "fixed_model = AutoModelForCausalLM.from_pretrained(DOWNLOAD / 'smollm2', dtype=torch.bfloat16)"]),
    Question("give generate() the inputs it needs", ["prompt_inputs"], _check_q2,
        hints=["Print type(broken_inputs['input_ids']): what does generate() expect instead?",
               "The tokenizer can return PyTorch tensors directly.",
               f"prompt_inputs = tokenizer({PROMPT!r}, return_tensors='pt').to(model.device)"]),
    Question("a tokenizer that can pad a batch for generation", ["batch_tokenizer"], _check_q3,
        hints=["Two settings matter for batched generation: which token pads, and on which side.",
               "Reuse a token the model already knows as the pad token; decoder-only models need the "
               "padding before the prompt.",
               "batch_tokenizer = tok_nopad; batch_tokenizer.pad_token = batch_tokenizer.eos_token; "
               "batch_tokenizer.padding_side = 'left'"]),
    Question(f"recover from out-of-memory on a {SMALL_GPU_MIB} MiB GPU with the next rung", ["model_fit"],
        _check_q4,
        hints=["Catch the exception put_on_small_gpu raises (which class?), print explain(e), and try again.",
               "The ladder: smaller dtype, 4-bit, offload, smaller batch. Take the first rung that fits.",
               "except torch.OutOfMemoryError: model_fit = put_on_small_gpu("
               "AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16))"]),
    Question("name the exceptions behind the seed lesson's three errors",
        ["lists_error", "offline_error", "cpu_oom_error"], _check_q5,
        hints=["Do not trust the seed lesson: make each mistake inside `with explained() as caught:`.",
               "type(caught.exception) is the class; its __name__ is the name. Either is accepted.",
               "lesson 05, rows 8, 1 and 10 of the catalogue."]),
    notebook=NOTEBOOK,
)
