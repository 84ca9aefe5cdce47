"""The pure pieces of the benchmark (benchmarks/) and the speed helpers: no assertions on speed."""

import pytest
import torch

import benchmarks.__main__ as bench
from benchmarks.common import md_table
from benchmarks.notebooks import expected_notebooks
from helpers.speed import bytes_per_token


def test_md_table_has_header_separator_and_rows():
    text = md_table(["name", "time (s)"], [["a", "1.5"], ["b|c", None]])
    assert text.splitlines() == [
        "| name | time (s) |",
        "|---|---|",
        "| a | 1.5 |",
        "| b\\|c | – |",
    ]


def test_bytes_per_token_counts_tied_lm_head_in_full_and_lookups_as_one_row(tiny_model_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
    wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
    assert model.lm_head.weight is wte  # tied: the lm_head matmul reads all of it
    n_unique = sum(p.numel() for p in model.parameters())  # tied weights counted once
    # everything once, except the position embedding: a lookup reads one row per token
    expected = 4 * (n_unique - wpe.numel() + wpe.shape[1])
    assert bytes_per_token(model) == expected
    assert bytes_per_token(model.to(torch.bfloat16)) == expected // 2


def test_bytes_per_token_untied_embedding_is_one_row():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    embed = model.model.embed_tokens.weight
    n = sum(p.numel() for p in model.parameters())
    assert bytes_per_token(model) == 4 * (n - embed.numel() + 16)


def test_bytes_per_token_of_a_4bit_layer_is_packed_weights_plus_quant_state():
    bnb = pytest.importorskip("bitsandbytes")
    # compress_statistics=False: what BitsAndBytesConfig(load_in_4bit=True) does by default
    layer = bnb.nn.Linear4bit(128, 64, bias=False, quant_type="nf4", compress_statistics=False,
                              compute_dtype=torch.bfloat16).to("cpu")  # .to() quantizes
    packed = 128 * 64 // 2             # two 4-bit values per byte
    absmax = 128 * 64 // 64 * 4        # one float32 scale per block of 64
    code = 16 * 4                      # the NF4 lookup table
    assert bytes_per_token(torch.nn.Sequential(layer)) == packed + absmax + code


def test_bytes_per_token_of_a_double_quantized_4bit_layer_counts_the_nested_state():
    bnb = pytest.importorskip("bitsandbytes")
    layer = bnb.nn.Linear4bit(128, 64, bias=False, quant_type="nf4", compress_statistics=True,
                              compute_dtype=torch.bfloat16).to("cpu")
    packed, absmax, code = 128 * 64 // 2, 128 * 64 // 64 * 1, 16 * 4  # absmax now uint8
    nested = 4 + 256 * 4 + 4          # one float32 scale for the 128 absmax, its 8-bit code, offset
    assert bytes_per_token(torch.nn.Sequential(layer)) == packed + absmax + code + nested


def test_expected_notebooks_come_from_the_readme_course_map():
    expected = expected_notebooks()
    assert "notebooks/01_loading.ipynb" in expected
    assert "solutions/01_loading.ipynb" in expected  # exercises/ links stand for solutions/
    assert not any(name.startswith("exercises/") for name in expected)


def test_the_peak_sampler_keeps_a_peak_that_is_already_given_back():
    """The sampler's logic, on a reading the test controls (a process's real memory also moves with
    what the rest of the process frees meanwhile, so it cannot give an exact expected peak)."""
    import threading

    from helpers.memory import PeakSampler
    level, seen = [100], {100: threading.Event(), 300: threading.Event(), 50: threading.Event()}

    def read():
        seen[level[0]].set()
        return level[0], None  # a None (an unknown reading) stays None

    with PeakSampler(read, 0.001) as sampler:
        for value in (300, 50):  # up, then given back; each waits until the sampler has read it
            level[0] = value
            assert seen[value].wait(timeout=30)
    assert sampler.peak == [300, None]


def test_options_select_sections(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(bench, "machine_header", lambda: ["- machine"])
    monkeypatch.setattr(bench, "bench_setup", lambda: ran.append("setup") or "## setup")
    out = tmp_path / "b.md"
    assert bench.main(["--only", "setup", "--out", str(out)]) == 0
    assert ran == ["setup"]
    text = out.read_text()
    assert "## setup" in text and "make bench" in text
    ran.clear()
    bench.main(["--only", "setup", "--skip-setup", "--out", str(out)])
    assert ran == []


def test_decode_speed_measures_prefill_and_decoding_apart(tiny_model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.speed import decode_speed
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    one = decode_speed(model, tok, prompt="Hello", new_tokens=8, repeats=1, bandwidth=1e9)
    four = decode_speed(model, tok, prompt="Hello", new_tokens=8, batch=4, repeats=1, bandwidth=1e9)
    assert (one.batch, four.batch, one.new_tokens) == (1, 4, 8)
    assert one.roofline_tok_s == 1e9 / bytes_per_token(model) == four.roofline_tok_s  # a bound per row
    assert str(one).startswith("cpu float32, batch 1: prefill")


def test_the_share_of_the_roofline_is_per_row_of_the_batch():
    from helpers.speed import Speed
    speed = Speed("cpu", "float32", batch=4, new_tokens=8, prefill_s=0.1, decode_tok_s=40.0, roofline_tok_s=20.0)
    assert speed.of_roofline == 0.5  # 40 tokens/s over 4 rows = 10 per row, half of 20
