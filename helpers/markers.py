"""The solution markers, in one place: how a solution notebook marks the answer to question ``qN``.

In ``solutions/NN_topic.ipynb`` the answer code sits between two marker lines::

    # BEGIN SOLUTION q1
    model_bf16 = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16)
    # END SOLUTION

:func:`regions` finds them; ``q1.solution()`` shows the body (:mod:`helpers.checking`) and the
exercise builder blanks it out (:mod:`helpers.exercises`).
"""

from __future__ import annotations

from dataclasses import dataclass

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"


@dataclass
class Region:
    """One marked answer in a cell: lines ``start`` (the BEGIN line) to ``end`` (the END line)."""

    question: str
    start: int
    end: int
    indent: str
    body: str  # the answer code, dedented by the BEGIN line's indentation


def regions(source: str) -> list[Region]:
    """The marked regions of one cell's source, in order. Raises ValueError for an unclosed region."""
    lines, found, open_at = source.splitlines(), [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if open_at is None and stripped.startswith(BEGIN):
            open_at = i
        elif open_at is not None and stripped == END:
            begin = lines[open_at]
            indent = begin[: len(begin) - len(begin.lstrip())]
            body = [x[len(indent):] if x.startswith(indent) else x for x in lines[open_at + 1:i]]
            found.append(Region(begin.strip()[len(BEGIN):].strip(), open_at, i, indent, "\n".join(body)))
            open_at = None
    if open_at is not None:
        raise ValueError(f"a '{BEGIN}' region has no '{END}' line")
    return found
