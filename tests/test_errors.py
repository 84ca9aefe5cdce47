"""helpers.errors: every diagnosis is checked against an exception raised by the real libraries.

Each case below provokes a real error from transformers / torch / safetensors / the Hub
client (pinned versions), and asserts that ``explain`` names the right recipe. Broken
checkpoints are built in a temp folder from the tiny course model (13 MB), never in the repo.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from helpers.errors import RECIPES, Diagnosis, explain, explained, short_paths

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this error needs a machine without CUDA")
NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="a real CUDA OOM needs a GPU")

# Recipes no test here can provoke on an offline, CPU-only machine (and why).
UNTESTABLE_HERE = {
    "hub-not-found": "needs the Hub online (a 404 for a nonexistent id)",
}


class NotATensor:  # a non-tensor object pickled into a .bin checkpoint
    pass



@pytest.fixture(scope="module")
def broken(tmp_path_factory, tiny_model_path, tiny_pair):
    """Broken checkpoint folders, each made from a copy of the tiny model."""
    from pathlib import Path
    src, root = Path(tiny_model_path), tmp_path_factory.mktemp("broken")
    weights = (src / "model.safetensors").read_bytes()

    def folder(name, config=True, weights_bytes=None):
        d = root / name
        d.mkdir()
        if config:
            shutil.copy(src / "config.json", d)
        if weights_bytes is not None:
            (d / "model.safetensors").write_bytes(weights_bytes)
        return d

    folder("no_config", config=False, weights_bytes=weights)
    folder("no_weights")
    d = folder("unknown_type", weights_bytes=weights)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "model_type": "smolfoo"}))
    folder("truncated", weights_bytes=weights[: len(weights) // 3])
    folder("not_weights", weights_bytes=b"version https://git-lfs.github.com/spec/v1\nsize 13117000\n")
    d = folder("custom_code", weights_bytes=weights)
    (d / "config.json").write_text(json.dumps({**cfg, "model_type": "custom-gpt2", "auto_map": {
        "AutoConfig": "modeling_custom.CustomConfig", "AutoModelForCausalLM": "modeling_custom.CustomLM"}}))
    (d / "modeling_custom.py").write_text("raise RuntimeError('this custom code must never run in the tests')\n")
    state = {k: v.clone() for k, v in tiny_pair[0].state_dict().items()}
    torch.save(state, folder("bin_only") / "pytorch_model.bin")
    torch.save({**state, "extra": NotATensor()}, folder("pickled_object") / "pytorch_model.bin")
    return root


def _raise(fn):
    """Run ``fn`` and return the exception it raises (the test fails if it does not raise)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any real error is what we want
        return e
    pytest.fail("expected the library to raise, and it did not")


def _load(path, **kw):
    from transformers import AutoModelForCausalLM
    return lambda: AutoModelForCausalLM.from_pretrained(path, **kw)


def _cases():
    """(id, recipe name, function(tiny_pair, broken, tiny_path) -> a callable that raises)."""
    from transformers import AutoTokenizer

    def tok_without_pad(t):
        tok = AutoTokenizer.from_pretrained(t)
        tok.pad_token = None
        return tok

    def tok_with_new_token(t):
        tok = AutoTokenizer.from_pretrained(t)
        tok.add_tokens(["<brand_new_token>"])
        return tok

    def offloaded_then_moved(t):
        from transformers import AutoModelForCausalLM
        m = AutoModelForCausalLM.from_pretrained(t, device_map="auto", max_memory={"cpu": "1MB"})
        return lambda: m.to("cpu")

    return [
        ("hub id offline", "hub-offline", lambda m, b, t: _load("no-such-org/no-such-model")),
        ("path typo read as hub id", "hub-offline", lambda m, b, t: _load("models/tiny-random-gtp2")),
        ("tokenizer hub id offline", "hub-offline",
         lambda m, b, t: lambda: AutoTokenizer.from_pretrained("no-such-org/no-such-model")),
        ("missing absolute path", "bad-repo-id", lambda m, b, t: _load(b / "does_not_exist")),
        ("folder without config.json", "no-config", lambda m, b, t: _load(b / "no_config")),
        ("folder without weights", "no-weights", lambda m, b, t: _load(b / "no_weights")),
        ("use_safetensors with only .bin", "no-weights", lambda m, b, t: _load(b / "bin_only", use_safetensors=True)),
        ("unknown model_type", "unknown-model-type", lambda m, b, t: _load(b / "unknown_type")),
        ("custom code refused", "trust-remote-code", lambda m, b, t: _load(b / "custom_code", trust_remote_code=False)),
        ("truncated safetensors", "corrupt-weights", lambda m, b, t: _load(b / "truncated")),
        ("LFS pointer as weights", "corrupt-weights", lambda m, b, t: _load(b / "not_weights")),
        (".bin with a pickled object", "pickle-weights", lambda m, b, t: _load(b / "pickled_object")),
        ("generate(**lists)", "generate-lists",
         lambda m, b, t: lambda: m[0].generate(**m[1]("Hello"), max_new_tokens=2)),
        ("generate(list of ids)", "generate-lists",
         lambda m, b, t: lambda: m[0].generate(m[1]("Hello")["input_ids"], max_new_tokens=2)),
        ("generate(text)", "generate-text", lambda m, b, t: lambda: m[0].generate("Hello", max_new_tokens=2)),
        ("generate(BatchEncoding) positional", "generate-batchencoding",
         lambda m, b, t: lambda: m[0].generate(m[1]("Hello", return_tensors="pt"), max_new_tokens=2)),
        ("generate(1-D tensor)", "generate-1d",
         lambda m, b, t: lambda: m[0].generate(m[1]("Hello", return_tensors="pt")["input_ids"][0],
                                               max_new_tokens=2)),
        ("max_length shorter than prompt", "max-length-short",
         lambda m, b, t: lambda: m[0].generate(**m[1]("one two three four", return_tensors="pt"), max_length=2)),
        ("typo in a generate kwarg", "unused-generate-kwargs",
         lambda m, b, t: lambda: m[0].generate(**m[1]("Hello", return_tensors="pt"), max_tokens=2)),
        ("temperature 0 with sampling", "zero-temperature",
         lambda m, b, t: lambda: m[0].generate(**m[1]("Hello", return_tensors="pt"), do_sample=True,
                                               temperature=0.0, max_new_tokens=2)),
        ("added token, embeddings not resized", "embedding-index",
         lambda m, b, t: lambda: m[0].generate(**tok_with_new_token(t)("Hi <brand_new_token>", return_tensors="pt"),
                                               max_new_tokens=2)),
        ("padding without a pad token", "pad-missing",
         lambda m, b, t: lambda: tok_without_pad(t)(["Hi", "Hello there"], padding=True, return_tensors="pt")),
        pytest.param("device_map='cuda' without CUDA", "no-cuda", lambda m, b, t: _load(t, device_map="cuda"),
                     marks=NO_CUDA),
        pytest.param("device_map=0 without a GPU", "no-cuda", lambda m, b, t: _load(t, device_map=0), marks=NO_CUDA),
        pytest.param(".to('cuda') without CUDA", "no-cuda", lambda m, b, t: lambda: torch.ones(2).to("cuda"),
                     marks=NO_CUDA),
        ("device_map='gpu'", "device-map-value", lambda m, b, t: _load(t, device_map="gpu")),
        ("device_map=-1", "device-map-value", lambda m, b, t: _load(t, device_map=-1)),
        pytest.param("max_memory with cuda:0 key", "device-map-value",
                     lambda m, b, t: _load(t, device_map="auto", max_memory={"cuda:0": "1GB", "cpu": "1GB"}),
                     marks=NO_CUDA),
        ("moving an offloaded model", "offloaded-move", lambda m, b, t: offloaded_then_moved(t)),
        (".bin offloaded to disk, no offload_folder", "offload-folder",
         lambda m, b, t: _load(b / "bin_only", device_map={"": "disk"})),
        ("dtype='bf16'", "dtype-name", lambda m, b, t: _load(t, dtype="bf16")),
        ("load_in_4bit shortcut", "removed-kwarg", lambda m, b, t: _load(t, load_in_4bit=True)),
        ("use_auth_token", "removed-kwarg", lambda m, b, t: _load(t, use_auth_token="hf_x")),
        ("CPU allocation too large", "cpu-oom", lambda m, b, t: lambda: torch.empty(10**14)),
        ("Python allocation too large", "cpu-oom", lambda m, b, t: lambda: bytearray(1 << 60)),
        pytest.param("CUDA allocation too large", "cuda-oom",
                     lambda m, b, t: lambda: torch.empty(10**13, device="cuda"), marks=NEEDS_CUDA),
    ]


CASES = _cases()


def _case_name(case):
    return case.values[1] if hasattr(case, "values") else case[1]


@pytest.mark.parametrize("label, recipe, make", CASES,
                         ids=[c.values[0] if hasattr(c, "values") else c[0] for c in CASES])
def test_explain_names_the_cause(label, recipe, make, tiny_pair, broken, tiny_model_path):
    exc = _raise(make(tiny_pair, broken, tiny_model_path))
    d = explain(exc)
    assert d.name == recipe, f"{label}: got {d.name!r} for {type(exc).__name__}: {str(exc)[:200]}"
    text = str(d)
    assert text.splitlines()[0].startswith(type(exc).__name__ + ":")
    assert "cause:" in text and "fix:" in text
    assert "/tmp/" not in text and str(broken) not in text  # paths are shortened for display


def test_every_recipe_is_exercised():
    tested = {_case_name(c) for c in CASES}
    missing = {r.name for r in RECIPES} - tested - set(UNTESTABLE_HERE)
    assert not missing, f"recipes without a real-exception test: {sorted(missing)}"


def test_chained_error_is_followed(tiny_pair):
    """generate(BatchEncoding) raises an AttributeError with an empty message; the cause is chained."""
    model, tok = tiny_pair
    exc = _raise(lambda: model.generate(tok("Hello", return_tensors="pt"), max_new_tokens=2))
    d = explain(exc)
    assert type(exc).__name__ == "AttributeError" and type(d.matched).__name__ == "KeyError"
    assert "raised from KeyError" in str(d)


def test_hub_offline_error_is_an_oserror_not_connectionerror():
    """The seed says ConnectionError; the pinned libraries raise OSError (offline)."""
    exc = _raise(_load("no-such-org/no-such-model"))
    assert isinstance(exc, OSError) and not isinstance(exc, ConnectionError)
    assert type(explain(exc).matched).__name__ == "OSError"


def test_unknown_error_gets_an_honest_answer(tiny_pair):
    exc = _raise(lambda: tiny_pair[0].config.num_hidden_layerz)
    d = explain(exc)
    assert d.name is None and not d.known
    text = str(d)
    assert text.startswith("AttributeError: ") and "num_hidden_layerz" in text.splitlines()[0]
    assert "none known" in text and "fix:" not in text


def test_explained_swallows_and_prints(capsys, tiny_pair):
    model, tok = tiny_pair
    with explained() as caught:
        model.generate(**tok("Hello"), max_new_tokens=2)
    out = capsys.readouterr().out
    assert out.startswith("AttributeError: 'list' object has no attribute 'shape'")
    assert "return_tensors" in out
    assert isinstance(caught.exception, AttributeError) and isinstance(caught.diagnosis, Diagnosis)
    assert caught.diagnosis.name == "generate-lists"


def test_explained_keeps_the_exception_but_not_the_locals_of_its_frames(capsys):
    import gc
    import traceback
    import weakref

    class Big:  # stands for a model held by a frame the error passed through
        pass

    def fails(obj):
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer") from inner

    big = Big()
    alive = weakref.ref(big)
    with explained() as caught:
        fails(big)
    del big
    gc.collect()
    assert alive() is None, "the kept exception's traceback still holds the frame's locals"
    assert isinstance(caught.exception, ValueError) and isinstance(caught.exception.__cause__, KeyError)
    assert "fails" in [f.name for f in traceback.extract_tb(caught.exception.__traceback__)]
    assert capsys.readouterr().out.startswith("ValueError: outer")


def test_explained_says_when_nothing_failed(capsys):
    with explained() as caught:
        torch.ones(2)
    assert "no exception" in capsys.readouterr().out
    assert caught.exception is None and caught.diagnosis is None


def test_explained_lets_keyboard_interrupt_through():
    with pytest.raises(KeyboardInterrupt):
        with explained():
            raise KeyboardInterrupt  # the stop button must still stop a cell


def test_explain_without_argument_uses_the_last_error(monkeypatch):
    exc = _raise(lambda: torch.empty(10**14))
    monkeypatch.setattr(sys, "last_value", exc, raising=False)
    monkeypatch.setattr(sys, "last_exc", exc, raising=False)
    assert explain().name == "cpu-oom"
    monkeypatch.delattr(sys, "last_value", raising=False)
    monkeypatch.delattr(sys, "last_exc", raising=False)
    with pytest.raises(ValueError, match="no argument"):
        explain()


def test_short_paths(tmp_path):
    text = f"Unrecognized model in {tmp_path / 'no_config'}. See https://huggingface.co/docs/x/y#z"
    assert short_paths(text) == "Unrecognized model in …/no_config. See https://huggingface.co/docs/x/y#z"
