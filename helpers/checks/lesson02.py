"""Checks for exercises/02_generation.ipynb: generate(), chat templates, batching, sampling.

Every reference is computed live on the course model (float32, CPU), never stored; answers may
come from a model on a GPU (ids are compared on the CPU: greedy decoding in float32 gives the
same tokens there). Sampled answers are checked by their properties (length, prompt prefix,
diversity, every token within the top-k), never by their text.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from .. import chat
from ..checking import Question, expect, numbered
from .common import as_id_rows, as_mask_rows, reference_greedy, reference_model, reference_tokenizer

NOTEBOOK = "02_generation.ipynb"

Q1_PROMPT = "The best thing about learning to code is"
Q1_NEW = 10

Q2_QUESTION = "Give me one tip for learning Python."

Q3_QUESTION = "Name three colors."
Q3_MAX_NEW = 40

Q4_PROMPTS = ("The sky is", "My favourite food is a dish that")
Q4_NEW = 8

Q5_PROMPT = "Once upon a time"
Q5_NEW, Q5_TOP_K, Q5_SAMPLES = 12, 5, 3


def _greedy_new_ids(prompt: str, max_new_tokens: int) -> tuple[int, ...]:
    """The new ids of a greedy decode of ``prompt`` (plain text) by the reference model."""
    return reference_greedy(prompt, max_new_tokens)[len(reference_tokenizer()(prompt)["input_ids"]):]


@functools.lru_cache(maxsize=None)
def _beam_rows(prompt: str, max_new_tokens: int, beams: int) -> tuple[tuple[int, ...], ...]:
    """The ``beams`` best sequences of a beam search on ``prompt`` by the reference model."""
    tok, ref = reference_tokenizer(), reference_model()
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = ref.generate(**enc, max_new_tokens=max_new_tokens, num_beams=beams,
                           num_return_sequences=beams, do_sample=False)
    return tuple(sorted(tuple(r) for r in out.tolist()))


@functools.lru_cache(maxsize=None)
def _greedy_reply(question: str, max_new_tokens: int) -> str:
    """The reference model's greedy reply to ``question`` in the chat template, decoded."""
    return chat.reply(reference_model(), reference_tokenizer(), question, max_new_tokens)


def _one_row(value, name: str) -> list[int]:
    rows = as_id_rows(value, name)
    expect(len(rows) == 1, f"`{name}` should hold one sequence, not {len(rows)}")
    return rows[0]


# --------------------------------------------------------------------------- q1

def _check_q1(new_ids):
    got = _one_row(new_ids, "new_ids")
    tok = reference_tokenizer()
    prompt_ids = tok(Q1_PROMPT)["input_ids"]
    want = list(_greedy_new_ids(Q1_PROMPT, Q1_NEW))
    n = len(prompt_ids)
    expect(not (got[:n] == prompt_ids and len(got) > Q1_NEW),
           "`new_ids` still starts with the prompt's ids: keep only the ids after the prompt "
           "(slice the output of generate() from the prompt's length on)")
    expect(len(got) == Q1_NEW,
           f"you have {len(got)} new ids, the question asks for {Q1_NEW}: use max_new_tokens "
           "(max_length counts the prompt too)")
    expect(got == want,
           "those ids are not the greedy continuation of the prompt given: tokenize that exact "
           "prompt, use the float32 `model` and do_sample=False (sampling draws random tokens)")


# --------------------------------------------------------------------------- q2

def _as_prompt_text(value, name: str) -> tuple[str, list[int] | None]:
    """A chat prompt given as a str, ids, or a tokenizer output -> (text, ids or None)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, Mapping):
        expect("input_ids" in value, f"`{name}` is a dict without `input_ids`")
        value = value["input_ids"]
    ids = _one_row(value, name)
    return reference_tokenizer().decode(ids), ids


def _check_q2(chat_prompt):
    tok = reference_tokenizer()
    text, ids = _as_prompt_text(chat_prompt, "chat_prompt")
    want = chat.inputs(tok, Q2_QUESTION, tokenize=False)
    without_header = tok.apply_chat_template(chat.turn(Q2_QUESTION), tokenize=False)
    expect("<|im_start|>" in text,
           "there are no chat markers (<|im_start|>...) in it: build it with "
           "tokenizer.apply_chat_template(messages, ...), not by tokenizing the question")
    expect(Q2_QUESTION in text, "the user's message should be exactly the question given")
    expect(text != without_header,
           "it ends after the user's message: pass add_generation_prompt=True, so that it ends "
           "with the header of the assistant's reply")
    expect(text == want,
           "it differs from what the chat template gives for one user message holding the "
           "question, with the generation prompt (the template adds its default system "
           "message by itself; do not add another)")
    if ids is not None:
        expect(ids == tok(want)["input_ids"],
               "the text is right but the ids are not those of the tokenizer: use the ids "
               "that apply_chat_template returns")


# --------------------------------------------------------------------------- q3

def _check_q3(reply):
    expect(isinstance(reply, str), "`reply` should be a string: decode the new ids with tokenizer.decode")
    expect("<|im_" not in reply,
           "`reply` contains special tokens such as <|im_end|>: decode with skip_special_tokens=True")
    expect(Q3_QUESTION not in reply and "You are a helpful" not in reply,
           "`reply` contains the prompt too: decode only the new ids (the output of generate() "
           "from the prompt's length on)")
    expect(reply.strip() != "",
           "`reply` is empty: did you give the model the question in its chat template, with "
           "add_generation_prompt=True?")
    want = _greedy_reply(Q3_QUESTION, Q3_MAX_NEW)
    expect(reply.strip() == want.strip(),
           f"that is not the model's greedy reply to the templated question: use "
           f"apply_chat_template(..., add_generation_prompt=True), do_sample=False and "
           f"max_new_tokens={Q3_MAX_NEW} with the float32 `model`")


# --------------------------------------------------------------------------- q4

def _check_q4(batch_inputs, batch_output):
    tok = reference_tokenizer()
    expect(isinstance(batch_inputs, Mapping) and "input_ids" in batch_inputs,
           "`batch_inputs` should be what the tokenizer returns for the two prompts (a dict "
           "with input_ids and attention_mask)")
    expect("attention_mask" in batch_inputs,
           "`batch_inputs` has no attention_mask: keep the tokenizer's whole output, and pass "
           "it all to generate() with **batch_inputs")
    ids = as_id_rows(batch_inputs["input_ids"], "batch_inputs['input_ids']")
    mask = as_mask_rows(batch_inputs["attention_mask"], "batch_inputs['attention_mask']")
    expect(len(ids) == len(Q4_PROMPTS), f"`batch_inputs` should hold {len(Q4_PROMPTS)} rows, one per prompt")
    expect(len({len(r) for r in ids}) == 1, "the rows have different lengths: tokenize with padding=True")
    expect([len(r) for r in mask] == [len(r) for r in ids],
           "`batch_inputs`' attention_mask does not have the shape of its input_ids: keep the tokenizer's "
           "output as it is")
    width = len(ids[0])
    for k, (row, m, prompt) in enumerate(zip(ids, mask, Q4_PROMPTS)):
        real = [t for t, keep in zip(row, m) if keep]
        expect(real == tok(prompt)["input_ids"],
               f"row {k} of `batch_inputs` is not the prompt {prompt!r} (keep the prompts in the order given)")
        pads = [t for t, keep in zip(row, m) if not keep]
        expect(all(t == tok.pad_token_id for t in pads), f"row {k} has padding that is not the pad token")
        n_pad = len(pads)
        expect(m[n_pad:] == [1] * (width - n_pad),
               f"row {k} is padded on the right: a decoder-only model must be padded on the left "
               "(tokenizer.padding_side = 'left')")
    expect(any(0 in m for m in mask), "no row is padded: did you tokenize the two prompts given?")
    out = as_id_rows(batch_output, "batch_output")
    expect(len(out) == len(Q4_PROMPTS), f"`batch_output` should hold {len(Q4_PROMPTS)} rows")
    for k, (row, row_in) in enumerate(zip(out, ids)):
        expect(row[:width] == row_in,
               f"row {k} of `batch_output` does not start with `batch_inputs`' ids: generate from them")
        expect(len(row) - width == Q4_NEW,
               f"row {k} of `batch_output` has {len(row) - width} new tokens, the question asks "
               f"for {Q4_NEW}: use max_new_tokens")
    for k, (row, prompt) in enumerate(zip(out, Q4_PROMPTS)):
        expect(row[width:] == list(_greedy_new_ids(prompt, Q4_NEW)),
               f"row {k}'s new tokens differ from a greedy decode of its prompt alone: pass the "
               "attention mask (generate(**batch_inputs, ...)) and use do_sample=False")


# --------------------------------------------------------------------------- q5

def _check_q5(sampled_ids):
    """Three samples: each row the prompt, then 1 to 12 sampled tokens (12 unless it ended with EOS).

    A sample is judged by its new tokens, up to and including an EOS (what follows an EOS is
    padding): each row must have at least one new token that is not EOS, at least two rows must
    differ in their new tokens, and every new token (the EOS too) must be among the top-k at its
    step. So a row that ends with EOS right after the prompt sampled nothing, and an EOS can end a
    sample only where the model would have drawn it.
    """
    rows = as_id_rows(sampled_ids, "sampled_ids")
    tok, ref = reference_tokenizer(), reference_model()
    eos = tok.eos_token_id
    prompt_ids = tok(Q5_PROMPT)["input_ids"]
    n = len(prompt_ids)
    expect(len(rows) == Q5_SAMPLES, f"`sampled_ids` should hold {Q5_SAMPLES} rows, one per sample")
    news, ended = [], []
    for k, row in enumerate(rows):
        expect(row[:n] == prompt_ids,
               f"row {k} does not start with the prompt's ids: keep the whole output of generate()")
        new = row[n:]
        expect(len(new) <= Q5_NEW,
               f"row {k} has {len(new)} new tokens, the question asks for {Q5_NEW}: use max_new_tokens")
        ended.append(eos in new)
        if ended[-1]:  # a sample that ended early: the rest is padding
            new = new[:new.index(eos)]
        else:
            expect(len(new) == Q5_NEW,
                   f"row {k} has {len(new)} new tokens, the question asks for {Q5_NEW}: use max_new_tokens")
        expect(len(new) > 0,
               f"row {k} ends right after the prompt: each sample needs at least one new token before the "
               f"end-of-sequence token (sample up to {Q5_NEW} new tokens with do_sample=True)")
        news.append(new)
    expect(len({tuple(new) for new in news}) > 1,
           "all the samples are identical in their new tokens (at least two of them should differ): sample "
           "with do_sample=True (greedy decoding gives the same text every time)")
    # Score every row in one forward pass: the logits at position i are the scores that the token
    # at position i + 1 was drawn from. A row's EOS is scored too; what follows it is ignored.
    seqs = torch.tensor([prompt_ids + new + [eos] * (Q5_NEW - len(new)) for new in news])
    with torch.no_grad():
        logits = ref(seqs).logits[:, n - 1:-1]
    kth = torch.topk(logits, Q5_TOP_K, dim=-1).values[..., -1]
    chosen = logits.gather(2, seqs[:, n:, None])[..., 0]
    for k, (new, stop) in enumerate(zip(news, ended)):
        drawn = len(new) + stop  # the EOS, where a row has one, was drawn too
        ok = chosen[k, :drawn] >= kth[k, :drawn] - 1e-3
        expect(bool(ok.all()),
               f"row {k} holds tokens outside the {Q5_TOP_K} most likely ones: pass top_k={Q5_TOP_K} "
               "(and sample from the float32 course model)")
    expect(sorted(map(tuple, rows)) != sorted(_beam_rows(Q5_PROMPT, Q5_NEW, Q5_SAMPLES)),
           "those are beam search's best sequences, not samples: use do_sample=True")


# --------------------------------------------------------------------------- questions

q1, q2, q3, q4, q5 = QUESTIONS = numbered(
    Question(f"greedy-generate exactly {Q1_NEW} new tokens, and keep only those", ["new_ids"], _check_q1,
        hints=["Tokenize with return_tensors='pt'; generate() returns the prompt's ids followed by the new ones.",
               f"max_new_tokens={Q1_NEW} counts only new tokens; slice the output from "
               "inputs['input_ids'].shape[1] on.",
               f"inputs = tokenizer({Q1_PROMPT!r}, return_tensors='pt').to(model.device); "
               f"out = model.generate(**inputs, max_new_tokens={Q1_NEW}, do_sample=False); "
               "new_ids = out[0, inputs['input_ids'].shape[1]:]"]),
    Question("build a chat prompt with the tokenizer's chat template", ["chat_prompt"], _check_q2,
        hints=["A conversation is a list of {'role': ..., 'content': ...} dicts; here, one 'user' message.",
               "tokenizer.apply_chat_template(messages, ...) writes the model's format. Which argument "
               "adds the start of the assistant's reply?",
               f"chat_prompt = tokenizer.apply_chat_template([{{'role': 'user', 'content': {Q2_QUESTION!r}}}], "
               "tokenize=False, add_generation_prompt=True)"]),
    Question("ask the chat model a question and decode only its reply", ["reply"], _check_q3,
        hints=["Build the prompt with apply_chat_template(..., add_generation_prompt=True, return_tensors='pt').",
               "The new ids start at the prompt's length: out[0, n_prompt:]. Which decode() argument drops <|im_end|>?",
               f"chat = tokenizer.apply_chat_template([{{'role': 'user', 'content': {Q3_QUESTION!r}}}], "
               "add_generation_prompt=True, return_tensors='pt').to(model.device); out = model.generate(**chat, "
               f"max_new_tokens={Q3_MAX_NEW}, do_sample=False); reply = tokenizer.decode("
               "out[0, chat['input_ids'].shape[1]:], skip_special_tokens=True)"]),
    Question("batch two prompts with the right padding; greedy outputs must match unbatched ones",
        ["batch_inputs", "batch_output"], _check_q4,
        hints=["tokenizer(list_of_prompts, return_tensors='pt', padding=True) pads the shorter prompt.",
               "Decoder-only models continue from the last position of each row: set "
               "tokenizer.padding_side before tokenizing, and pass the attention mask to generate().",
               "tokenizer.padding_side = 'left'; batch_inputs = tokenizer(list(PROMPTS), return_tensors='pt', "
               f"padding=True); batch_output = model.generate(**batch_inputs.to(model.device), max_new_tokens={Q4_NEW}, "
               "do_sample=False)"]),
    Question(f"sample {Q5_SAMPLES} continuations with top-k sampling", ["sampled_ids"], _check_q5,
        hints=["Sampling needs do_sample=True; top_k limits each draw to the k most likely tokens.",
               "num_return_sequences=3 returns 3 samples in one call (or call generate() 3 times).",
               f"torch.manual_seed(0); sampled_ids = model.generate("
               f"**tokenizer({Q5_PROMPT!r}, return_tensors='pt').to(model.device), do_sample=True, "
               f"top_k={Q5_TOP_K}, max_new_tokens={Q5_NEW}, num_return_sequences={Q5_SAMPLES})"]),
    notebook=NOTEBOOK,
)
