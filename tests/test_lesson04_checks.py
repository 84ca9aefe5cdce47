"""Lesson 04 checks: right answers (written two ways) pass, known-wrong answers fail, blanks are not attempted."""

import logging
import tempfile

import numpy as np
import pytest
import torch

from helpers.checking import ____
from helpers.checks import lesson04
from helpers.checks.common import reference_model, reference_tokenizer
from support import NESTED, REFERENCE_FREE, assert_verdict, forged, status

CORRECT, INCORRECT, NOT_ATTEMPTED, ERROR = "correct", "incorrect", "not_attempted", "error"


@pytest.fixture(scope="module", autouse=True)
def quiet_imaginary_gpus():
    logging.getLogger("accelerate.utils.modeling").setLevel(logging.ERROR)



def _top_level_map(course_model, device_for_layer):
    n = course_model.config.num_hidden_layers
    return {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu",
            **{f"model.layers.{i}": device_for_layer(i, n) for i in range(n)}}


def _load(device_map):
    from transformers import AutoModelForCausalLM

    from helpers import resolve_model
    with lesson04.quiet_accelerate():
        return AutoModelForCausalLM.from_pretrained(resolve_model(), dtype=torch.float32, device_map=device_map,
                                                    offload_folder=tempfile.mkdtemp(prefix="offload-test-"))


def _greedy(model):
    enc = reference_tokenizer()(lesson04.PROMPT, return_tensors="pt")
    with torch.no_grad():
        return model.generate(**enc, max_new_tokens=lesson04.NEW_TOKENS, do_sample=False)


# --------------------------------------------------------------------------- q1

@REFERENCE_FREE
def test_q1():
    squeezed = lesson04.squeezed_reference()
    q = lesson04.q1
    right = dict(squeezed_device=squeezed.device, layer20_planned=squeezed.hf_device_map["model.layers.20"],
                 layer20_weight_device=squeezed.model.layers[20].self_attn.q_proj.weight.device)
    assert status(q, **right) == CORRECT
    assert status(q, squeezed_device="cpu", layer20_planned="disk", layer20_weight_device="meta") == CORRECT
    # model.device everywhere; plan and tensor swapped; 'disk' as a tensor device; not a device at all
    assert status(q, squeezed_device="cpu", layer20_planned="cpu", layer20_weight_device="cpu") == INCORRECT
    assert status(q, squeezed_device="cpu", layer20_planned="meta", layer20_weight_device="disk") == INCORRECT
    assert status(q, squeezed_device="cpu", layer20_planned="disk", layer20_weight_device="disk") == INCORRECT
    assert status(q, squeezed_device=None, layer20_planned="disk", layer20_weight_device="meta") == INCORRECT
    assert status(q, squeezed_device="meta", layer20_planned="disk", layer20_weight_device="meta") == INCORRECT
    assert status(q, squeezed_device="cpu", layer20_planned=____, layer20_weight_device="meta") == NOT_ATTEMPTED
    assert q.evaluate({}).status == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q2

@pytest.fixture(scope="module")
def last_four_on_disk():
    model = _load(_top_level_map(reference_model(), lambda i, n: "disk" if i >= n - lesson04.DISK_LAST else "cpu"))
    return model, _greedy(model)


def test_q2_right(last_four_on_disk):
    model, ids = last_four_on_disk
    assert status(lesson04.q2, disk_model=model, disk_ids=ids) == CORRECT
    # written differently: a finer-grained map (attention and MLP named separately), ids as a list
    ref = reference_model()
    n = ref.config.num_hidden_layers
    finer = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu"}
    for i in range(n):
        device = "disk" if i >= n - lesson04.DISK_LAST else "cpu"
        for part in ("self_attn", "mlp", "input_layernorm", "post_attention_layernorm"):
            finer[f"model.layers.{i}.{part}"] = device
    other = _load(finer)
    assert other.hf_device_map == finer
    assert status(lesson04.q2, disk_model=other, disk_ids=ids[0].tolist()) == CORRECT


def test_q2_wrong(last_four_on_disk):
    model, ids = last_four_on_disk
    q = lesson04.q2
    ref = reference_model()
    assert status(q, disk_model=ref, disk_ids=_greedy(ref)) == INCORRECT            # nothing offloaded
    first_four = _load(_top_level_map(ref, lambda i, n: "disk" if i < lesson04.DISK_LAST else "cpu"))
    assert status(q, disk_model=first_four, disk_ids=ids) == INCORRECT             # the first layers, not the last
    norm_too = _load({**_top_level_map(ref, lambda i, n: "disk" if i >= n - lesson04.DISK_LAST else "cpu"),
                      "model.norm": "disk"})
    assert status(q, disk_model=norm_too, disk_ids=ids) == INCORRECT               # more than the layers on disk
    assert status(q, disk_model=model, disk_ids=ids[:, :-5]) == INCORRECT          # wrong length
    other_prompt = ids.clone()
    other_prompt[0, 0] += 1
    assert status(q, disk_model=model, disk_ids=other_prompt) == INCORRECT         # not the prompt asked for
    torch.manual_seed(0)
    enc = reference_tokenizer()(lesson04.PROMPT, return_tensors="pt")
    sampled = ref.generate(**enc, max_new_tokens=lesson04.NEW_TOKENS, do_sample=True, temperature=5.0)
    assert status(q, disk_model=model, disk_ids=sampled) == INCORRECT              # sampled, not greedy
    assert status(q, disk_model="model", disk_ids=ids) == INCORRECT
    assert status(q, disk_model=model, disk_ids=____) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q3

@REFERENCE_FREE
def test_q3():
    q = lesson04.q3
    assert status(q, n_gpus_70b=7) == CORRECT
    assert status(q, n_gpus_70b=np.int64(7)) == CORRECT
    result = q.evaluate({"n_gpus_70b": 6})                                          # size / memory: too few
    assert result.status == INCORRECT and "whole decoder layers" in result.message
    # 6 is also what infer_auto_device_map answers when the learner leaves out no_split_module_classes
    # (it then cuts layers): the message says to pass it, and the question says so too
    from accelerate import infer_auto_device_map
    llama70b, usable = lesson04.meta_llama("70B"), (lesson04.GPU_GIB - lesson04.HEADROOM_GIB) * 2**30
    cutting = next(n for n in range(1, 20) if all(
        isinstance(d, int) for d in infer_auto_device_map(llama70b, max_memory={i: usable for i in range(n)}).values()))
    result = q.evaluate({"n_gpus_70b": cutting})
    assert result.status == INCORRECT and "no_split_module_classes" in result.message, result
    assert "no_split_module_classes" in lesson04.q3.title + "".join(lesson04.q3.hints)
    assert status(q, n_gpus_70b=5) == INCORRECT                                    # too few either way
    assert status(q, n_gpus_70b=8) == INCORRECT
    assert status(q, n_gpus_70b=7.0) == INCORRECT
    assert status(q, n_gpus_70b="7") == INCORRECT
    assert status(q, n_gpus_70b=True) == INCORRECT
    assert status(q, n_gpus_70b=None) == INCORRECT
    assert status(q, n_gpus_70b=____) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q4

@REFERENCE_FREE
def test_q4():
    q = lesson04.q4
    assert status(q, offload_budget={"cpu": "350MB"}) == CORRECT
    assert status(q, offload_budget={"cpu": 350_000_000}) == CORRECT
    assert status(q, offload_budget={"cpu": "0.3GiB"}) == CORRECT
    assert status(q, offload_budget={"cpu": "10GB"}) == INCORRECT                   # nothing offloaded
    assert status(q, offload_budget={"cpu": "1MB"}) == INCORRECT                    # everything on disk
    assert status(q, offload_budget={"cpu": "250MB"}) == INCORRECT                  # too few layers in RAM
    assert status(q, offload_budget={"cpu": "600MB"}) == INCORRECT                  # fits: no offload
    assert status(q, offload_budget={0: "100MB", "cpu": "350MB"}) == INCORRECT     # a GPU key
    assert status(q, offload_budget={"cuda:0": "350MB"}) == INCORRECT
    assert status(q, offload_budget="350MB") == INCORRECT
    assert status(q, offload_budget={"cpu": "lots"}) == INCORRECT
    assert status(q, offload_budget=____) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q5

@REFERENCE_FREE
def test_q5():
    from accelerate import infer_auto_device_map
    from accelerate.utils import get_balanced_memory

    q = lesson04.q5
    llama7b = lesson04.meta_llama("7B")
    no_split = llama7b._no_split_modules

    def plan(low_zero=None, clean_result=True):
        budget = dict(lesson04.LOW0_BUDGET)
        if low_zero is not None:
            budget = get_balanced_memory(llama7b, max_memory=budget, no_split_module_classes=no_split,
                                         low_zero=low_zero)
        return infer_auto_device_map(llama7b, max_memory=budget, no_split_module_classes=no_split,
                                     clean_result=clean_result)

    assert status(q, low0_map=plan(low_zero=True)) == CORRECT
    assert status(q, low0_map=dict(plan(low_zero=True, clean_result=False))) == CORRECT  # finer-grained map
    assert status(q, low0_map=plan(low_zero=False)) == INCORRECT                  # "balanced"/"auto"
    assert status(q, low0_map=plan()) == INCORRECT                                # "sequential"
    assert status(q, low0_map={"": 0}) == INCORRECT
    assert status(q, low0_map={"": "cpu"}) == INCORRECT
    assert status(q, low0_map={"model.layers.0": 1}) == INCORRECT                 # incomplete
    assert status(q, low0_map=[]) == INCORRECT
    assert status(q, low0_map=____) == NOT_ATTEMPTED


# --------------------------------------------------------------------------- q2: a map a real load made

def _right_map(course_model):
    return _top_level_map(course_model, lambda i, n: "disk" if i >= n - lesson04.DISK_LAST else "cpu")


def test_q2_a_hand_written_map_on_a_plain_load_is_rejected(model, last_four_on_disk):
    """The old loophole: a model loaded without offload, with the right map written into hf_device_map."""
    _, ids = last_four_on_disk
    model.hf_device_map = _right_map(model)
    try:
        result = lesson04.q2.evaluate({"disk_model": model, "disk_ids": ids})
    finally:
        del model.hf_device_map
    assert result.status == INCORRECT and "meta device" in result.message, result


def _edit_map(change):
    def edit(record, folder):
        change(record["disk_model"])
    return edit


@pytest.mark.parametrize("change, says", [
    # keys that are no module of the course model, or that overlap: no load makes such a map
    (lambda m: m["hf_device_map"].update({"model.layers.99": "cpu"}), "not a module"),
    (lambda m: m["hf_device_map"].update({"model.layers.29.mlp": "disk"}), "inside it"),
    (lambda m: m["hf_device_map"].update({"model.layers": "cpu"}), "inside it"),
    (lambda m: m["hf_device_map"].pop("lm_head"), "no device"),
    # values that are no device
    (lambda m: m["hf_device_map"].update({"model.norm": "meta"}), "device"),
    (lambda m: m["hf_device_map"].update({"model.norm": 10**30}), "device"),
    (lambda m: m["hf_device_map"].update({"model.norm": "cuda:x"}), "device"),
    # facts that an offloaded load does not leave
    (lambda m: m.update(on_meta=False), "meta device"),
    (lambda m: m.update(memory_footprint=m["memory_footprint"] // 2), "footprint"),
    (lambda m: m.update(dtypes=["bfloat16"]), "float32"),
    (lambda m: m.update(device="meta"), "first parameter"),
    (lambda m: m.update(parameter_names=m["parameter_names"][:-1]), "parameters"),
    (lambda m: m.update(embedding_rows=None), "embedding"),
], ids=["unknown-module", "nested-entry", "parent-entry", "lm_head-missing", "meta-value", "huge-int-value",
        "bad-cuda-value", "not-on-meta", "half-footprint", "bf16", "device-meta", "parameter-missing",
        "no-embedding"])
def test_q2_records_no_offloaded_load_leaves_are_rejected(last_four_on_disk, change, says):
    disk_model, ids = last_four_on_disk
    result = forged(lesson04.q2, {"disk_model": disk_model, "disk_ids": ids}, _edit_map(change))
    assert result.status in (INCORRECT, ERROR), result  # ERROR: refused by the record's schema on load
    if result.status == INCORRECT:
        assert says in result.message, result


def test_q2_the_honest_record_passes_through_the_forging_harness(last_four_on_disk):
    disk_model, ids = last_four_on_disk
    assert forged(lesson04.q2, {"disk_model": disk_model, "disk_ids": ids}, lambda record, folder: None).status \
        == CORRECT


# --------------------------------------------------------------------------- every question answers hostile values

def _q5_plan():
    return dict(lesson04._plan_low0())


POSITIONS = {  # question -> how a hostile value v is placed among otherwise right answers
    "q1-squeezed_device": lambda v, m: dict(squeezed_device=v, layer20_planned="disk", layer20_weight_device="meta"),
    "q1-layer20_planned": lambda v, m: dict(squeezed_device="cpu", layer20_planned=v, layer20_weight_device="meta"),
    "q1-layer20_weight_device": lambda v, m: dict(squeezed_device="cpu", layer20_planned="disk",
                                                  layer20_weight_device=v),
    "q2-disk_model": lambda v, m: dict(disk_model=v, disk_ids=m[1]),
    "q2-disk_ids": lambda v, m: dict(disk_model=m[0], disk_ids=v),
    "q3-n_gpus_70b": lambda v, m: dict(n_gpus_70b=v),
    "q4-offload_budget": lambda v, m: dict(offload_budget=v),
    "q4-offload_budget['cpu']": lambda v, m: dict(offload_budget={"cpu": v}),
    "q5-low0_map": lambda v, m: dict(low0_map=v),
    "q5-low0_map[layer 0]": lambda v, m: dict(low0_map={**_q5_plan(), "model.layers.0": v}),
    "q5-low0_map[key]": lambda v, m: dict(low0_map={**_q5_plan(), v if isinstance(v, (int, str)) else repr(v): 0}),
}


@REFERENCE_FREE
@pytest.mark.parametrize("value", NESTED)
@pytest.mark.parametrize("position", POSITIONS)
def test_hostile_values_get_a_verdict(last_four_on_disk, position, value):
    question = getattr(lesson04, position.split("-")[0])
    assert_verdict(question.evaluate(POSITIONS[position](value, last_four_on_disk)))


@REFERENCE_FREE
@pytest.mark.parametrize("answers", [
    dict(low0_map={1: 2, "a": 3}),                                     # was a TypeError (int + str)
    dict(low0_map={"model.embed_tokens": 0, "lm_head": torch.tensor([1, 2]), "model": 1}),  # was ambiguous bool
    dict(offload_budget={"cpu": "1e400GB"}),                          # was an OverflowError
])
def test_answers_that_crashed_a_check_are_now_rejected(answers):
    result = getattr(lesson04, "q5" if "low0_map" in answers else "q4").evaluate(answers)
    assert result.status == INCORRECT and result.message, result
