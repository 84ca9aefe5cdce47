"""The generation playground of lesson 02: three plain functions, and a small UI on top.

* :func:`generation_kwargs` - turn the playground's settings into ``model.generate()`` keyword
  arguments (only the flags the chosen strategy uses, so transformers warns about nothing);
* :func:`stream_generate` - run ``model.generate()`` in a background thread and yield the new
  text piece by piece, as a ``TextIteratorStreamer`` produces it;
* :func:`make_playground` - build the ipywidgets UI: a prompt, a strategy, temperature, top-k,
  top-p, max new tokens, a Generate button, and an output box the text streams into.

The UI is a thin layer: its Generate button calls :meth:`Playground.generate`, which calls the
two plain functions above. Tests (and you) can call all of them without a browser::

    pg = make_playground(model, tokenizer)
    pg.prompt.value = "Write a haiku about the sea."
    pg.generate()            # what a click on the button does; returns the text
    pg.output.value          # the text that streamed into the output box
"""

from __future__ import annotations

from collections.abc import Iterator
from threading import Thread

import ipywidgets as widgets
import torch

from . import chat as chat_template

STRATEGIES = ("greedy", "sampling", "beam search")


def generation_kwargs(strategy: str = "greedy", temperature: float = 1.0, top_k: int = 50,
                      top_p: float = 1.0, max_new_tokens: int = 40, num_beams: int = 3) -> dict:
    """Keyword arguments for ``model.generate()`` for one decoding ``strategy``.

    * ``"greedy"``: ``do_sample=False`` - always the most likely next token;
    * ``"sampling"``: ``do_sample=True`` with ``temperature``, ``top_k`` (0 = no top-k
      filter) and ``top_p`` (1.0 = no nucleus filter);
    * ``"beam search"``: ``num_beams`` beams, no sampling.

    Flags the strategy does not use are left out (passing ``temperature`` to a greedy
    decode makes transformers print "The following generation flags are not valid and may be
    ignored"). Bad values raise ``ValueError`` with a message saying what to change.

    >>> generation_kwargs("greedy", max_new_tokens=5)
    {'max_new_tokens': 5, 'do_sample': False}
    """
    if int(max_new_tokens) < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    kwargs = {"max_new_tokens": int(max_new_tokens)}
    if strategy == "greedy":
        kwargs["do_sample"] = False
    elif strategy == "sampling":
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature} "
                             "(for 'always the most likely token', use strategy='greedy')")
        if int(top_k) < 0:
            raise ValueError(f"top_k must be >= 0 (0 turns the top-k filter off), got {top_k}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1.0 turns the nucleus filter off), got {top_p}")
        kwargs.update(do_sample=True, temperature=float(temperature), top_k=int(top_k), top_p=float(top_p))
    elif strategy == "beam search":
        if int(num_beams) < 2:
            raise ValueError(f"beam search needs num_beams >= 2, got {num_beams}")
        kwargs.update(do_sample=False, num_beams=int(num_beams))
    else:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(map(repr, STRATEGIES))}")
    return kwargs


def build_inputs(tokenizer, prompt: str, chat: bool = True):
    """Tokenize ``prompt`` as tensors: wrapped in the chat template (as one user message, with the
    assistant header added) when ``chat`` is true, as plain text otherwise."""
    if chat:
        return chat_template.inputs(tokenizer, prompt)
    return tokenizer(prompt, return_tensors="pt")


def stream_generate(model, tokenizer, prompt: str, *, chat: bool = True, seed: int | None = None,
                    timeout: float | None = None, **generate_kwargs) -> Iterator[str]:
    """Yield the text ``model`` generates after ``prompt``, chunk by chunk, as it is produced.

    ``generate_kwargs`` go to ``model.generate()`` (for example ``**generation_kwargs(...)``).
    ``chat=True`` applies the tokenizer's chat template first; ``seed`` calls
    ``torch.manual_seed(seed)`` so that sampling is reproducible. Only the new text is
    yielded, without special tokens.

    How it works: ``model.generate(..., streamer=TextIteratorStreamer(...))`` runs in a
    background thread and puts text into the streamer's queue; this generator takes it out.
    Beam search cannot stream (transformers refuses a streamer with ``num_beams > 1``): then
    the whole text is generated first and yielded as one chunk. An error inside ``generate``
    is raised here, in the caller's thread. If you stop iterating early, the thread still
    finishes its ``max_new_tokens`` in the background.
    """
    from transformers import TextIteratorStreamer

    inputs = build_inputs(tokenizer, prompt, chat).to(model.device)
    n_prompt = inputs["input_ids"].shape[1]
    if seed is not None:
        torch.manual_seed(seed)  # the generator is global: it also seeds the worker thread
    if generate_kwargs.get("num_beams", 1) > 1:
        out = model.generate(**inputs, **generate_kwargs)
        yield tokenizer.decode(out[0, n_prompt:], skip_special_tokens=True)
        return
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=timeout)
    errors = []

    def work():
        try:
            model.generate(**inputs, **generate_kwargs, streamer=streamer)
        except Exception as e:  # hand the error to the caller, and unblock the loop below
            errors.append(e)
            streamer.end()

    thread = Thread(target=work, daemon=True)
    thread.start()
    for chunk in streamer:
        if chunk:
            yield chunk
    thread.join()
    if errors:
        raise errors[0]


def make_playground(model, tokenizer, prompt: str = "Write a short poem about the sea.") -> "Playground":
    """Build the generation playground for ``model`` and ``tokenizer``.

    Returns a :class:`Playground` (an ipywidgets ``VBox``): make it the last expression of a
    notebook cell to show it. From code, set its widgets' ``.value`` and call ``.generate()``.
    """
    return Playground(model, tokenizer, prompt)


class Playground(widgets.VBox):
    """The playground's widgets, and ``generate()``, the Generate button's handler.

    Controls: ``prompt``, ``chat`` (wrap the prompt in the chat template), ``strategy``,
    ``temperature``, ``top_k``, ``top_p``, ``max_new_tokens``, ``seed``; then ``button``,
    ``status`` (a one-line report) and ``output`` (the generated text).
    """

    def __init__(self, model, tokenizer, prompt: str = "Write a short poem about the sea."):
        self.model, self.tokenizer = model, tokenizer
        style = {"description_width": "9em"}
        self.prompt = widgets.Textarea(value=prompt, description="prompt", style=style,
                                       layout=widgets.Layout(width="95%"))
        self.chat = widgets.Checkbox(value=True, description="wrap the prompt in the chat template",
                                     style=style)
        self.strategy = widgets.ToggleButtons(options=STRATEGIES, value="sampling",
                                              description="strategy", style=style)
        self.temperature = widgets.FloatSlider(value=0.7, min=0.05, max=2.0, step=0.05,
                                               description="temperature", style=style)
        self.top_k = widgets.IntSlider(value=50, min=0, max=200, description="top_k (0 = off)",
                                       style=style)
        self.top_p = widgets.FloatSlider(value=0.95, min=0.05, max=1.0, step=0.05,
                                         description="top_p (1 = off)", style=style)
        self.max_new_tokens = widgets.IntSlider(value=40, min=1, max=200, description="max_new_tokens",
                                                style=style)
        self.seed = widgets.IntText(value=0, description="seed", style=style)
        self.button = widgets.Button(description="Generate", button_style="primary", icon="play")
        self.status = widgets.Label(value="")
        self.output = widgets.Textarea(value="", placeholder="the generated text streams in here",
                                       disabled=True, layout=widgets.Layout(width="95%", height="12em"))
        self.button.on_click(self.generate)
        self.strategy.observe(self._sampling_controls, names="value")
        self._sampling_controls()
        super().__init__([self.prompt, self.chat, self.strategy, self.temperature, self.top_k,
                          self.top_p, self.max_new_tokens, self.seed,
                          widgets.HBox([self.button, self.status]), self.output])

    def _sampling_controls(self, change=None):
        """Grey out the sampling-only controls unless the strategy is sampling."""
        for control in (self.temperature, self.top_k, self.top_p, self.seed):
            control.disabled = self.strategy.value != "sampling"

    def kwargs(self) -> dict:
        """The ``generate()`` keyword arguments that the controls describe now."""
        return generation_kwargs(self.strategy.value, self.temperature.value, self.top_k.value,
                                 self.top_p.value, self.max_new_tokens.value)

    def generate(self, button=None) -> str:
        """What a click on Generate does: stream new text into ``output``, and return it.

        Errors (a bad setting, a failing ``generate()``) are shown in ``status``, not raised.
        """
        self.button.disabled = True
        self.output.value, self.status.value = "", "generating..."
        text = ""
        try:
            kwargs = self.kwargs()
            seed = self.seed.value if kwargs.get("do_sample") else None
            for chunk in stream_generate(self.model, self.tokenizer, self.prompt.value,
                                         chat=self.chat.value, seed=seed, **kwargs):
                text += chunk
                self.output.value = text  # every assignment updates the box in the browser
            self.status.value = f"done: {kwargs}"
        except Exception as e:
            self.status.value = f"{type(e).__name__}: {e}"
        finally:
            self.button.disabled = False
        return text
