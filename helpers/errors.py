"""Name the likely cause, and the fix, of an error from transformers, torch or the Hub.

Three ways to use it::

    from helpers.errors import explain, explained

    with explained():          # catches an error raised in the block, prints
        model.generate([1, 2])  # "TypeName: first line", the cause and the fix,
                                # and does NOT re-raise: the notebook carries on

    try:
        AutoModelForCausalLM.from_pretrained(path)
    except Exception as e:
        print(explain(e))       # the same diagnosis, in your own try/except

    explain()                   # after a cell stopped with an error: explains that error

How it works: :data:`RECIPES` is a small table. Each row says "an exception of
this type whose message matches this pattern" -> cause, fix. :func:`explain`
looks at the exception and then down its chain (``raise ... from ...`` and
errors raised while handling another), and answers with the first row that
matches. An error with no row gets an honest "no known recipe" answer.

Only the display is touched: long folder paths (your temp folder, home, the
course folder) are shown as ``…/last_part`` so outputs stay short and private.
The exception itself is kept as is in ``Diagnosis.exception``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import textwrap
import traceback
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    """One row of the table: which errors it matches, and what to tell the learner."""

    name: str                 # a short id, e.g. "hub-offline"
    types: tuple              # exception class names; a subclass of one of them matches too
    pattern: str              # regular expression searched in the exception's message
    cause: str
    fix: str
    where: str | None = None  # only when the traceback went through a function of this name


LADDER = ("Climb the ladder, cheapest rung first: (1) a smaller dtype: dtype=torch.bfloat16 "
          "halves float32; (2) 4-bit weights: quantization_config=BitsAndBytesConfig(load_in_4bit=True); "
          "(3) offload part of the model: device_map='auto' with max_memory= (works, but slower); "
          "(4) a smaller batch or fewer new tokens (activations and the KV cache grow with both). "
          "On a GPU, first free what the failed attempt left: del the objects, gc.collect(), "
          "torch.cuda.empty_cache().")

R = Recipe
RECIPES: list[Recipe] = [
    # ---- finding the checkpoint
    R("hub-offline", ("OSError",),
      r"couldn't connect to 'https://huggingface\.co'|outgoing traffic has been disabled",
      "The name is not an existing local folder, so from_pretrained treated it as a Hub id. "
      "The Hub could not be reached (offline mode, or no network) and the files are not in "
      "the local cache.",
      "Meant a local folder? Pass its real path (check Path(p).is_dir(): a typo turns a path "
      "into a Hub id). Meant a Hub id? Download it once with network access, then it loads "
      "offline from the cache. Set HF_HUB_OFFLINE=1 before importing transformers so that an "
      "unreachable Hub fails at once instead of retrying."),
    R("hub-not-found", ("OSError",),
      r"is not a local folder and is not a valid model identifier|Repository Not Found|"
      r"gated repo|401 Client Error|403 Client Error",
      "The Hub has no public repository with this id: a typo, or a private or gated model "
      "you are not logged in for.",
      "Check the id on huggingface.co/models. For a gated or private model, accept its terms "
      "on the website and pass token= (or run `hf auth login`)."),
    R("bad-repo-id", ("OSError", "HFValidationError"), r"Repo id must",
      "No folder exists at this path, so it was read as a Hub id, and it is not a valid one "
      "('name' or 'org/name').",
      "Check the folder exists: Path(p).is_dir(). Relative paths start from the current "
      "folder (os.getcwd()), which in Jupyter is the notebook's folder."),
    R("no-config", ("ValueError",), r"Unrecognized model in .*model_type",
      "The folder has no config.json (or one without a model_type): it is not a checkpoint "
      "folder. Often it is the parent of one, or a GGUF folder loaded without gguf_file=.",
      "Point at the folder that holds config.json and the weights; for a .gguf file pass "
      "gguf_file='name.gguf'."),
    R("no-weights", ("OSError",), r"no file named .*(safetensors|pytorch_model\.bin)",
      "config.json is there but no weights file (model.safetensors, pytorch_model.bin, or a "
      "sharded *.index.json): an unfinished download or copy, or the weights sit in a subfolder.",
      "Copy or download the weight files into the folder (weights in a subfolder: "
      "subfolder='...'). use_safetensors=True also raises this when only .bin files exist."),
    R("unknown-model-type", ("ValueError", "KeyError"), r"does not recognize this architecture",
      "config.json names a model_type this version of transformers does not know: the model "
      "is newer than your transformers, the name is misspelled, or the architecture only "
      "exists as custom code in the repository.",
      "Upgrade transformers (pip install -U transformers) for a new model; fix a typo in "
      "model_type; for a repository that ships its own code, see trust_remote_code."),
    R("trust-remote-code", ("ValueError",), r"custom code|trust_remote_code=True",
      "config.json has an auto_map that points to Python files in the checkpoint. Loading "
      "would run that code (any Python at all), so transformers refuses unless you opt in.",
      "Read the .py files first. Only if you trust them: trust_remote_code=True, and on the "
      "Hub pin revision= to a commit so the code cannot change under you. Otherwise use a "
      "transformers version with native support. Always pass trust_remote_code explicitly: "
      "left unset, it asks at an input prompt, which blocks a notebook or a script."),
    # ---- reading the weights
    R("corrupt-weights", ("SafetensorError", "RuntimeError", "OSError"),
      r"Error while deserializing header|incomplete metadata|header too (small|large)|"
      r"PytorchStreamReader failed|invalid load key",
      "The weights file is damaged: truncated (an interrupted download or copy, a full disk) "
      "or not a weights file at all (a Git LFS pointer, an HTML error page).",
      "Delete the file and download or copy it again; compare its size (and SHA-256) with "
      "the source. A file of a few hundred bytes is usually a Git LFS pointer: git lfs pull."),
    R("pickle-weights", ("UnpicklingError",), r"Weights only load failed",
      "A .bin checkpoint holds Python objects besides tensors; torch loads .bin files with "
      "weights_only=True, which refuses to run pickled code.",
      "Prefer a safetensors copy of the model. For a file you trust: "
      "with torch.serialization.safe_globals([TheClass]): ... then load it."),
    # ---- generate() inputs
    R("generate-lists", ("AttributeError",), r"'list' object has no attribute 'shape'",
      "generate() got Python lists: the tokenizer was called without return_tensors='pt', "
      "so input_ids is a list of ints, not a tensor.",
      "inputs = tokenizer(text, return_tensors='pt'), then model.generate(**inputs, ...)."),
    R("generate-text", ("AttributeError",), r"'str' object has no attribute 'shape'",
      "generate() got a string; it takes token ids, not text.",
      "Tokenize first: model.generate(**tokenizer(text, return_tensors='pt'), ...)."),
    R("generate-batchencoding", ("KeyError",), r"^'shape'$",
      "The whole tokenizer output (a BatchEncoding) was passed as the first positional "
      "argument of generate().",
      "Unpack it into keyword arguments: model.generate(**inputs, ...)."),
    R("generate-1d", ("IndexError",), r"tuple index out of range",
      "generate() got a 1-D tensor of ids; it expects a batch, shape [batch, sequence].",
      "Add the batch dimension: ids[None] (or ids.unsqueeze(0)); or keep the tokenizer's "
      "return_tensors='pt' output, which is already 2-D.", where="generate"),
    R("max-length-short", ("ValueError",), r"but `max_length` is set to",
      "max_length counts the prompt too, and it is shorter than the prompt.",
      "Use max_new_tokens=N, which counts only the new tokens."),
    R("unused-generate-kwargs", ("ValueError",), r"model_kwargs` are not used by the model",
      "generate() got a keyword it does not know: usually a typo (max_tokens, max_new_token).",
      "Use GenerationConfig's names: max_new_tokens, do_sample, temperature, top_p, top_k, ..."),
    R("zero-temperature", ("ValueError",), r"`temperature` \(=.*\) has to be a strictly positive",
      "Sampling with temperature 0 is undefined.",
      "For greedy decoding pass do_sample=False (no temperature); to sample, use a temperature > 0."),
    R("embedding-index", ("IndexError",), r"index out of range in self",
      "A token id is not smaller than the embedding size: tokens were added to the tokenizer "
      "without resizing the model, or the tokenizer belongs to another model.",
      "model.resize_token_embeddings(len(tokenizer)) after adding tokens; load the tokenizer "
      "from the same checkpoint as the model."),
    # ---- padding
    R("pad-missing", ("ValueError",), r"Asking to pad but the tokenizer does not have a padding token",
      "padding=True needs a pad token, and this tokenizer has none (common for base models "
      "such as GPT-2 and Llama).",
      "tokenizer.pad_token = tokenizer.eos_token (the attention_mask keeps the padding out of "
      "the computation); for generation also set tokenizer.padding_side = 'left'."),
    # ---- devices
    R("no-cuda", ("AssertionError", "RuntimeError"),
      r"Torch not compiled with CUDA enabled|Cannot access accelerator device when none is available|"
      r"Found no NVIDIA driver|No CUDA GPUs are available|not linked with support for mps",
      "The code asks for a GPU (device_map='cuda', .to('cuda'), device_map=0) and this "
      "PyTorch has none: a CPU-only build, no GPU, or no driver.",
      "Choose the device from what exists: 'cuda' if torch.cuda.is_available() else 'cpu' "
      "(helpers.best_device()), or device_map='auto'. Move inputs with .to(model.device)."),
    R("device-map-value", ("ValueError",),
      r"When passing device_map as a string|device_map as a negative int|Device .* is not recognized",
      "device_map (or a max_memory key) names a device accelerate does not know, or one this "
      "machine lacks ('gpu', -1, 'cuda:0' without CUDA).",
      "Use 'auto', 'cpu', 'cuda', 'cuda:0', a GPU index, or a dict {module name: device}. "
      "max_memory keys are GPU indices (0, 1, ...), 'cpu' and 'disk'."),
    R("offloaded-move", ("RuntimeError",), r"can't move a model that has some modules offloaded",
      "The model was dispatched with device_map (some modules on cpu or disk); .to() would "
      "break the hooks that move weights in and out.",
      "Load it again with the placement you want (device_map=...), instead of .to()."),
    R("offload-folder", ("ValueError",), r"provide an `offload_folder`",
      "Some weights are offloaded to disk and must be re-saved (.bin or converted weights), "
      "but no folder was given.",
      "Pass offload_folder='some/folder', or give more memory (max_memory) so nothing goes to disk."),
    R("dtype-name", ("AttributeError",), r"module 'torch' has no attribute '(bf16|fp16|fp32|fp8|half16)'",
      "A dtype abbreviation was given as a string; strings must be torch's own names.",
      "dtype=torch.bfloat16, or the strings 'bfloat16', 'float16', 'float32', 'auto'."),
    R("removed-kwarg", ("TypeError",),
      r"unexpected keyword argument '(load_in_4bit|load_in_8bit|use_auth_token|resume_download)'",
      "A from_pretrained shortcut that transformers 5 removed.",
      "quantization_config=BitsAndBytesConfig(load_in_4bit=True) (or load_in_8bit); token= "
      "instead of use_auth_token=; downloads resume by themselves."),
    # ---- memory
    R("cuda-oom", ("OutOfMemoryError",), r"out of memory",
      "The GPU has no room for this allocation: the weights, plus activations and the KV "
      "cache, which grow with the batch size and the sequence length.", LADDER),
    R("cpu-oom", ("RuntimeError",), r"DefaultCPUAllocator: can't allocate memory|not enough memory",
      "The machine's RAM cannot hold this allocation (on the CPU this is a RuntimeError, "
      "not torch.OutOfMemoryError).", LADDER),
    R("cpu-oom", ("MemoryError",), r"",
      "The process ran out of memory (RAM, or a memory limit set on the process).", LADDER),
]
del R


# --------------------------------------------------------------------------- matching

def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, then its cause/context, then theirs... (outermost first, no loops)."""
    seen, out = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return out


def _type_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _went_through(exc: BaseException, function: str) -> bool:
    return any(frame.name == function for frame in traceback.extract_tb(exc.__traceback__))


def find_recipe(exc: BaseException) -> tuple[Recipe | None, BaseException | None]:
    """The first recipe matching ``exc`` or an exception in its chain, and the one it matched."""
    for link in _chain(exc):
        names, message = _type_names(link), str(link)
        for recipe in RECIPES:
            if (names.intersection(recipe.types) and re.search(recipe.pattern, message)
                    and (recipe.where is None or _went_through(exc, recipe.where))):
                return recipe, link
    return None, None


# --------------------------------------------------------------------------- display

def _path_roots() -> list[str]:
    from .models import repo_root
    roots = {tempfile.gettempdir(), os.path.expanduser("~"), str(repo_root())}
    roots |= {os.path.realpath(r) for r in roots}
    return sorted((r.rstrip("/") for r in roots if len(r) > 1), key=len, reverse=True)


def short_paths(text: str) -> str:
    """Show paths under the temp folder, home or the course folder as ``…/last_part``."""
    for root in _path_roots():
        pattern = r"(?<![\w.-])" + re.escape(root) + r"(?=[/\s'\"`.,]|$)[^\s'\"`,]*"
        text = re.sub(pattern, lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
    return text


def first_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (paths shortened)."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()  # no terminal colour codes
    return f"{type(exc).__name__}: " + (short_paths(lines[0]) if lines else "(empty message)")


@dataclass
class Diagnosis:
    """What :func:`explain` found. ``print(d)`` (or just ``d`` in Jupyter) shows it."""

    exception: BaseException
    recipe: Recipe | None
    matched: BaseException | None  # the exception in the chain the recipe matched

    @property
    def name(self) -> str | None:
        """The recipe's id (e.g. ``"hub-offline"``), or None when no recipe matched."""
        return self.recipe.name if self.recipe else None

    @property
    def known(self) -> bool:
        return self.recipe is not None

    def __str__(self) -> str:
        def block(label, text):
            return textwrap.fill(text, width=100, initial_indent=f"  {label:<8}",
                                 subsequent_indent=" " * 10)
        lines = [first_line(self.exception)]
        if self.matched is not None and self.matched is not self.exception:
            lines.append(f"  (raised from {first_line(self.matched)})")
        if self.recipe:
            lines += [block("cause:", self.recipe.cause), block("fix:", self.recipe.fix)]
        else:
            lines.append(block("recipe:", "none known for this error. Read the last line of the "
                                          "traceback, then the errors chained under it; search the "
                                          "message (without your own paths) in the library's issues."))
        return "\n".join(lines)

    __repr__ = __str__


def explain(exc: BaseException | None = None) -> Diagnosis:
    """Diagnose ``exc`` (default: the last error that stopped a cell/the interpreter)."""
    if exc is None:
        exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
        if exc is None:
            raise ValueError("explain() with no argument explains the last error that stopped a "
                             "cell, and there is none yet; pass an exception: explain(e)")
    recipe, matched = find_recipe(exc)
    return Diagnosis(exc, recipe, matched)


class explained:
    """``with explained():`` - run the block; if it raises, print the diagnosis and carry on.

    The exception is caught and NOT re-raised, so the rest of the notebook still runs.
    Use ``with explained() as caught:`` to look at ``caught.exception`` and
    ``caught.diagnosis`` afterwards (both None if nothing was raised). The local variables of
    the frames in its traceback are cleared (``traceback.clear_frames``): a kept exception
    would otherwise keep alive whatever those frames held, such as a model.
    KeyboardInterrupt (the stop button) is never caught.
    """

    def __init__(self):
        self.exception: BaseException | None = None
        self.diagnosis: Diagnosis | None = None

    def __enter__(self) -> "explained":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            print("(no exception was raised)")
            return False
        if not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit: let them through
        self.exception, self.diagnosis = exc, explain(exc)
        print(self.diagnosis)
        for link in _chain(exc):
            # A kept exception keeps its traceback, and the traceback keeps every local variable of
            # the frames it passed through (a model, a batch, a failed GPU allocation's tensors).
            # Clear them, so that keeping `caught` costs no memory; the lines stay readable.
            traceback.clear_frames(link.__traceback__)
        return True  # swallow it: the cell finishes normally
