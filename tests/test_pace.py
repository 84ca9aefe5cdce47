"""The lessons' shape and pace (issue 22): the seed cards' sections in every core lesson, and no
markdown cell on a lesson's main path (everything before its first "Optional" heading) longer than a
reader takes in at once."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted(p for p in (ROOT / "notebooks").glob("0[1-6]_*.ipynb"))
OPTIONAL = re.compile(r"#+\s*Optional\b")
MAX_WORDS = 300
SHAPE = ["Common gotcha", "Error recovery", "Check your understanding", "Version note", "Next"]


def main_path(nb: Path) -> list[dict]:
    """The cells before the first markdown heading that starts with "Optional"."""
    cells = []
    for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown" and OPTIONAL.match("".join(cell["source"]).lstrip()):
            break
        cells.append(cell)
    return cells


def test_there_are_six_core_lessons():
    assert [p.name[:2] for p in CORE] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("nb", CORE, ids=lambda p: p.stem)
def test_no_main_path_markdown_cell_is_too_long(nb):
    long = [(i, n) for i, cell in enumerate(main_path(nb)) if cell["cell_type"] == "markdown"
            and (n := len("".join(cell["source"]).split())) > MAX_WORDS]
    assert not long, f"{nb.name}: markdown cells (index, words) over {MAX_WORDS} words: {long}; split them or move them to an optional section"


@pytest.mark.parametrize("nb", CORE, ids=lambda p: p.stem)
def test_each_lesson_keeps_the_seed_cards_sections(nb):
    headings = [line for cell in main_path(nb) if cell["cell_type"] == "markdown"
                for line in "".join(cell["source"]).splitlines() if line.startswith("## ")]
    missing = [s for s in SHAPE if not any(h[3:].startswith(s) for h in headings)]
    assert not missing, f"{nb.name} has no main-path section for: {missing}"
