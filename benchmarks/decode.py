"""Section 3: greedy decoding at batch 1 in float32, bfloat16 and 4-bit NF4, against the roofline.

The measurement is :func:`helpers.speed.decode_speed`, the function lessons 03 and 04 call; the
bandwidth is measured once, on the CPU (this section runs the models on the CPU, like CI).
"""

from __future__ import annotations

import gc
from pathlib import Path

from helpers.speed import PROMPT

from .common import log, md_table



def load_variant(model_dir: Path, variant: str):
    """The course model as ``fp32``, ``bf16``, or bitsandbytes 4-bit ``nf4`` (bf16 compute) / ``nf4-fp32``."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if variant.startswith("nf4"):
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.float32 if variant == "nf4-fp32" else torch.bfloat16)
        return AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=config, device_map="cpu")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[variant]
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)


def bench_decode(model_dir: Path, new_tokens: int, repeats: int) -> str:
    """Section 3: one row per weight format, decode tokens/s next to the bandwidth roofline."""
    import torch
    from transformers import AutoTokenizer

    from helpers.speed import bytes_per_token, decode_speed, memory_bandwidth

    threads = torch.get_num_threads()
    log(f"decode: measuring read bandwidth with {threads} torch threads")
    bandwidth = memory_bandwidth("cpu", gib=1.0, repeats=7)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt_len = len(tokenizer(PROMPT)["input_ids"])
    rows = []
    for variant, label in (("fp32", "float32"), ("bf16", "bfloat16"),
                           ("nf4", "4-bit NF4 (compute bf16; embedding/lm_head and norms fp32)"),
                           ("nf4-fp32", "4-bit NF4 (compute fp32; embedding/lm_head and norms fp32)")):
        log(f"decode: {variant}")
        try:
            model = load_variant(model_dir, variant).eval()
            s = decode_speed(model, tokenizer, prompt=PROMPT, new_tokens=new_tokens, repeats=repeats,
                             bandwidth=bandwidth)
            rows.append([label, f"{bytes_per_token(model) / 1e6:.1f}", f"{bandwidth / 1e9:.1f}",
                         f"{s.roofline_tok_s:.1f}", f"{s.decode_tok_s:.1f}", f"{s.of_roofline:.2f}",
                         f"{s.prefill_s * 1000:.0f}"])
            del model
        except Exception as e:
            rows.append([label, None, None, None, f"failed: {type(e).__name__}: {str(e)[:120]}", None, None])
        gc.collect()
    table = md_table(["weights", "weight bytes read per token (MB)", "read bandwidth (GB/s)",
                      "roofline (tokens/s)", "measured decode (tokens/s)", "measured / roofline",
                      "prefill + 1st token (ms)"], rows)
    return ("## 3. Greedy decoding at batch 1 vs the memory-bandwidth roofline\n\n"
            f"Prompt of {prompt_len} tokens, exactly {new_tokens} new tokens, on the CPU with {threads} torch "
            f"threads, measured with `helpers.speed.decode_speed` (one warm-up, best of {repeats}; a "
            "streamer notes when each step's token is ready, so the prefill is left out of the decode "
            "rate). Roofline = read bandwidth (best sum of a 1 GiB float32 tensor, same process and "
            "threads) / weight bytes per token (tied embedding/lm_head counted in full, embedding lookup "
            "one row, 4-bit layers: packed weights + absmax/quant state; KV cache left out).\n\n" + table)
