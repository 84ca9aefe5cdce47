"""Learner x question tables for the terminal and CSV, safe for text a learner wrote.

The grader's report (:mod:`grading.report`) and the progress view (:mod:`helpers.progress`) both
print one row per learner (or notebook) and one column per question, and both show strings that
came from a learner: a file name, an error message, a field of a progress line. Every such string
goes through :func:`clean` (no terminal control characters: an escape sequence cannot repaint the
table) and, in a CSV file, :func:`cell` (no cell that a spreadsheet would run as a formula).
A leaf module: standard library only.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean(text) -> str:
    """``text`` with every control character (ANSI escapes, carriage returns, ...) written as ``\\xNN``."""
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in str(text))


def cell(value):
    """A CSV value: strings :func:`clean`, with a leading ``'`` where a spreadsheet would read a formula."""
    if not isinstance(value, str):
        return value
    text = clean(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def grid(corner: str, rows: list[str], columns: list[str], show: Callable[[str, str], str],
         tail: str, tail_of: Callable[[str], str], min_width: int = 5) -> list[str]:
    """The lines of a table: a header (``corner``, the columns, ``tail``), then one line per row.

    ``show(row, column)`` is the text of a cell (a symbol), ``tail_of(row)`` the last column's.
    """
    width = max([len(corner)] + [len(clean(r)) for r in rows])
    cw = max([min_width] + [len(clean(c)) for c in columns])
    lines = [corner.ljust(width) + "  " + "  ".join(clean(c).ljust(cw) for c in columns) + "  " + tail]
    for r in rows:
        cells = "  ".join(clean(show(r, c)).ljust(cw) for c in columns)
        lines.append(clean(r).ljust(width) + "  " + cells + "  " + clean(tail_of(r)))
    return lines


def write_csv(path: str, fields: list[str], rows: Iterable[dict]) -> None:
    """``rows`` as CSV with the header ``fields``, every value through :func:`cell`."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: cell(v) for k, v in r.items()} for r in rows)
