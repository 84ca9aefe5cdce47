"""Checks for exercises/06_qlora_loading.ipynb: 4-bit loading for QLoRA and a first LoRA fine-tune."""

from __future__ import annotations

import functools

import torch

from ..answers import AdapterFacts, ConfigRef
from ..checking import Question, as_dtype, expect, numbered
from ..finetune import ask
from ..quantization import generic_4bit_path
from .common import as_number, is_model, reference_model, reference_tokenizer

NOTEBOOK = "06_qlora_loading.ipynb"
QUESTION = "What is the capital of Zanthoria?"  # the made-up fact in helpers/data/lesson06_facts.jsonl
ANSWER = "Quillmere"
RATIO_TOLERANCE = 0.005


@functools.lru_cache(maxsize=None)
def reference_footprints() -> dict:
    """Footprints of the course model: float32 as loaded, and NF4 with bf16 kept layers, counted from its layers.

    Loaded in 4 bits, every weight of a linear layer inside the decoder is stored as 4 bits (two per
    byte) and the other parameters (embeddings, norms, an untied output head) follow ``dtype=``: that
    is what ``get_memory_footprint()`` of the 4-bit model adds up, buffers included. Counting it here
    spares the learner's notebook a second 4-bit load; the tests compare it with a real one.
    """
    ref = reference_model()
    head = ref.get_output_embeddings()
    quantized = {id(m.weight) for m in ref.modules() if isinstance(m, torch.nn.Linear) and m is not head}
    packed_bytes = kept = 0
    for p in ref.parameters():  # a tied tensor is listed once
        if id(p) in quantized:
            packed_bytes += (p.numel() + 1) // 2
        else:
            kept += p.numel()
    buffers = sum(b.numel() * b.element_size() for b in ref.buffers())
    return {"fp32": ref.get_memory_footprint(), "4bit": packed_bytes + 2 * kept + buffers, "kept_params": kept}


def reference_lora_targets() -> set[str]:
    """The short names of the linear layers inside the course model's decoder layers (not the output head)."""
    ref = reference_model()
    head = ref.get_output_embeddings()
    return {name.rsplit(".", 1)[-1] for name, m in ref.named_modules()
            if isinstance(m, torch.nn.Linear) and m is not head}


# --------------------------------------------------------------------------- q1

def _check_q1(bnb_config):
    expect(not isinstance(bnb_config, dict),
           "`bnb_config` is a dict: build a BitsAndBytesConfig(...) object (from_pretrained takes it as "
           "quantization_config=)")
    expect(isinstance(bnb_config, ConfigRef)
           and bnb_config.type.is_subclass_of("transformers.utils.quantization_config.BitsAndBytesConfig"),
           "`bnb_config` should be a transformers BitsAndBytesConfig")
    config = bnb_config.values
    expect(not config.get("load_in_8bit"), "that config loads in 8 bits; QLoRA loads the base model in 4 bits")
    expect(config.get("load_in_4bit") is True, "the config does not load in 4 bits: set load_in_4bit=True")
    expect(config.get("bnb_4bit_quant_type") == "nf4",
           f"the 4-bit type is {config.get('bnb_4bit_quant_type')!r}: the question asks for NormalFloat-4 "
           "(the default type is not it)")
    expect(config.get("bnb_4bit_use_double_quant") is True,
           "double quantization is off: set the option that also quantizes the per-block scales")
    dtype = as_dtype(config.get("bnb_4bit_compute_dtype"))
    expect(dtype == torch.bfloat16,
           f"the compute dtype is {dtype}, not bfloat16: set bnb_4bit_compute_dtype "
           "(torch.bfloat16 or the string 'bfloat16')")


# --------------------------------------------------------------------------- q2

def _check_q2(footprint_ratio):
    r = as_number(footprint_ratio, "footprint_ratio")
    ref = reference_footprints()
    want = ref["4bit"] / ref["fp32"]
    fp32_kept = (ref["4bit"] + 2 * ref["kept_params"]) / ref["fp32"]  # kept parts in float32 instead of bf16
    expect(r > 0, "a memory ratio is positive")
    expect(r <= 1.0 or abs(1 / r - want) > RATIO_TOLERANCE,
           "that is float32 divided by 4-bit: divide the 4-bit footprint by the float32 one")
    expect(not (1 < r <= 100 and abs(r / 100 - want) <= RATIO_TOLERANCE),
           "that looks like a percentage: give the ratio as a fraction (e.g. 0.5 for half)")
    expect(abs(r - 4 / 32) > 1e-9, "4/32 is the theory for the weights alone; measure the loaded model with "
                                   "get_memory_footprint()")
    expect(abs(r - fp32_kept) > RATIO_TOLERANCE,
           "your 4-bit model keeps its unquantized parts (embeddings, norms) in float32: load it with "
           "dtype=torch.bfloat16 as the question says")
    expect(abs(r - want) <= RATIO_TOLERANCE,
           f"that is not the measured ratio (tolerance {RATIO_TOLERANCE}): load the course model with your "
           "bnb_config and dtype=torch.bfloat16, and divide its get_memory_footprint() by the float32 model's")


# --------------------------------------------------------------------------- q3

def _check_q3(lora_targets):
    expect(not (isinstance(lora_targets, str) and lora_targets == "all-linear"),
           "'all-linear' is peft's shortcut; the question asks which module names it stands for here")
    expect(isinstance(lora_targets, (list, tuple, set, frozenset)) and lora_targets
           and all(isinstance(t, str) for t in lora_targets),
           "`lora_targets` should be a list (or set) of module names, as strings")
    names = set(lora_targets)
    expect(len(names) == len(list(lora_targets)), "each name should appear once")
    want = reference_lora_targets()
    expect(not any("." in n for n in names),
           "give the short names (the part after the last dot, e.g. the name of a projection), which "
           "LoraConfig matches in every layer, not full dotted paths")
    expect("lm_head" not in names,
           "lm_head is the output layer (tied to the embeddings here), not a projection inside the layers")
    unknown = names - want
    expect(not unknown, f"{sorted(unknown)} are not names of linear layers in the course model: read them "
                        "from model.named_modules()")
    missing = want - names
    expect(not missing, f"{len(missing)} of the model's linear projections are missing: the question asks "
                        "for all of them, in attention and in the MLP")


# --------------------------------------------------------------------------- q4

def greedy_answer(model, question: str = QUESTION, max_new_tokens: int = 12) -> str:
    """The model's greedy answer to one chat question, without side effects on the model.

    Generated through the generic 4-bit path, so checking never repacks (and so never breaks the
    training of) a learner's 4-bit model; every train/eval flag is restored.
    """
    with generic_4bit_path(model):
        return ask(model, reference_tokenizer(), question, max_new_tokens)


def _bnb_config(saved: dict):
    """A BitsAndBytesConfig from the 4-bit options of a saved ``quantization_config`` (nothing else is read)."""
    from transformers import BitsAndBytesConfig

    dtype = as_dtype(saved.get("bnb_4bit_compute_dtype")) or torch.float32
    expect(saved.get("bnb_4bit_quant_type") in ("nf4", "fp4"), "the base model's 4-bit type is not nf4 or fp4")
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=saved["bnb_4bit_quant_type"],
                              bnb_4bit_use_double_quant=bool(saved.get("bnb_4bit_use_double_quant")),
                              bnb_4bit_compute_dtype=dtype)


def adapter_answer(adapter: AdapterFacts, question: str = QUESTION) -> str:
    """Load the course model in 4 bits as the learner's base was, put the saved adapter on it, ask ``question``."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ..models import resolve_model
    kept = torch.float32 if torch.float32 in adapter.base.dtypes else torch.bfloat16
    base = AutoModelForCausalLM.from_pretrained(resolve_model(), dtype=kept,
                                                quantization_config=_bnb_config(adapter.base.quantization_config))
    model = PeftModel.from_pretrained(base, str(adapter.folder))
    return greedy_answer(model, question)


def _check_q4(peft_model):
    expect(isinstance(peft_model, AdapterFacts),
           "`peft_model` should be the PeftModel you trained (get_peft_model(...) or PeftModel.from_pretrained)")
    base, ref = peft_model.base, reference_model()
    expect(is_model(base) and base.model_type == ref.config.model_type
           and base.config.get("vocab_size") == ref.config.vocab_size,
           "the base model is not the course model: load it from `MODEL`")
    expect(base.has_4bit_layers and isinstance(base.quantization_config, dict),
           "the base model is not 4-bit: QLoRA trains on a base loaded with quantization_config=bnb_config")
    expect(peft_model.lora_parameters > 0,
           "the model has no LoRA weights left (was it merged?): check the PeftModel itself")
    answer = adapter_answer(peft_model)
    expect(ANSWER in answer,
           "its greedy answer to the question does not name the capital from the training data yet: train "
           "more steps or with a higher learning rate (and on a CPU with avx512_bf16, do not generate with the "
           "model before or between training steps: see the lesson's 'Common gotcha')")


q1, q2, q3, q4 = QUESTIONS = numbered(
    Question("build the QLoRA quantization config: NF4, double quantization, bf16 compute", ["bnb_config"], _check_q1,
        hints=["BitsAndBytesConfig takes four 4-bit options: load_in_4bit, bnb_4bit_quant_type, "
               "bnb_4bit_use_double_quant, bnb_4bit_compute_dtype.",
               "The quant type is a string; the compute dtype is a torch dtype (or its name as a string).",
               "bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', "
               "bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)"]),
    Question("measure the 4-bit footprint as a fraction of float32", ["footprint_ratio"], _check_q2,
        hints=["Load the course model with quantization_config=bnb_config and dtype=torch.bfloat16 (for the "
               "layers that stay unquantized), on device_map=DEVICE.",
               "model.get_memory_footprint() gives bytes; `model_fp32` from the setup cell is the float32 model.",
               "footprint_ratio = model_4bit.get_memory_footprint() / model_fp32.get_memory_footprint()"]),
    Question("list the LoRA target modules of the course model", ["lora_targets"], _check_q3,
        hints=["The candidates are the linear layers inside the decoder layers; model.named_modules() lists them.",
               "Keep the part of each name after the last dot, once each; leave out the output head (lm_head).",
               "lora_targets = sorted({name.rsplit('.', 1)[-1] for name, m in model_fp32.named_modules() "
               "if isinstance(m, torch.nn.Linear) and name != 'lm_head'})"]),
    Question("train a LoRA adapter on the 4-bit model until it knows the capital of Zanthoria", ["peft_model"],
        _check_q4,
        hints=["Load a 4-bit base on DEVICE with bnb_4bit_compute_dtype=TRAIN_COMPUTE_DTYPE from the setup cell "
               "(float32 on a CPU: lesson section 2), prepare_model_for_kbit_training(base, "
               "use_gradient_checkpointing=False), then get_peft_model(base, LoraConfig(...)). Train with the "
               "`examples` and `collate` from the setup cell.",
               "Section 6 of the lesson: AdamW on the trainable parameters, lr=2e-3, one pass over the 32 examples "
               "in a shuffled order, batches of 4 (8 steps). Generate only after training.",
               "r=8, lora_alpha=16, lora_dropout=0.05, target_modules=['q_proj','k_proj','v_proj','o_proj'], "
               "task_type='CAUSAL_LM'; loop: loss = peft_model(**collate(batch)).loss; loss.backward(); "
               "optimizer.step(); optimizer.zero_grad()"]),
    notebook=NOTEBOOK,
)
