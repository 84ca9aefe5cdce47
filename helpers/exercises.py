"""Exercise notebooks are generated from the solution notebooks (one source of truth).

In ``solutions/NN_topic.ipynb`` the answer code of question ``qK`` sits between
two marker lines::

    # BEGIN SOLUTION q1
    model_bf16 = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16)
    # END SOLUTION

``build`` writes ``exercises/NN_topic.ipynb`` with each region replaced by::

    # YOUR CODE HERE
    model_bf16 = ____

(one ``name = ____`` line for each variable the solution assigns), outputs
and ``# NBVAL_CHECK_OUTPUT`` markers removed, and cells tagged ``solution-only``
dropped. Everything else - the
prompts, the Colab cell (its "Open in Colab" link made the exercise's own: :mod:`helpers.colab`),
the setup cell, the ``q1.check()`` cells - is shared.

``reset`` copies a fresh exercise into ``my_work/`` under a new name; it never
overwrites an existing file.
"""

from __future__ import annotations

import ast
import copy
import shutil
from pathlib import Path

import nbformat

from .markers import regions
from .models import repo_root


def _assigned_names(code: str) -> list[str]:
    """Names assigned at the top level of ``code`` (the learner's answer variables)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and sub.id not in names:
                    names.append(sub.id)
    return names


def blank_out(source: str) -> str:
    """Replace every solution region in a cell's source with the placeholder lines."""
    lines = source.splitlines()
    for region in reversed(regions(source)):  # from the end, so earlier line numbers stay valid
        names = _assigned_names(region.body)
        blank = [f"{region.indent}# YOUR CODE HERE"] + [f"{region.indent}{name} = ____" for name in names]
        lines[region.start:region.end + 1] = blank if names else blank + [f"{region.indent}pass"]
    return "\n".join(lines)


def exercise_from_solution(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise notebook for a solution notebook (a new object; the input is untouched)."""
    nb = copy.deepcopy(solution)
    cells = []
    for cell in nb.cells:
        if "solution-only" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            # outputs are cleared, so nbval must not compare them in the exercise
            lines = blank_out(cell.source).splitlines()
            cell.source = "\n".join(line for line in lines if line.strip() != "# NBVAL_CHECK_OUTPUT")
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.setdefault("course", {})["generated_from"] = "solutions/ (python -m helpers exercises build)"
    return nb


def _render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def build_all(check: bool = False, root: Path | None = None) -> int:
    """Write ``exercises/`` from ``solutions/``; with ``check=True`` only report stale files.

    Returns 0 when everything is (or now is) up to date, 1 when ``check`` found
    a difference.
    """
    from . import colab

    root = Path(root or repo_root())
    repository = colab.repository_url(root)
    stale = []
    for src in sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb")):
        dest = root / "exercises" / src.name
        nb = exercise_from_solution(nbformat.read(src, as_version=4))
        colab.apply(nb, f"exercises/{src.name}", repository)  # its own "Open in Colab" link
        text = _render(nb)
        if dest.is_file() and dest.read_text() == text:
            continue
        if check:
            stale.append(dest)
        else:
            dest.parent.mkdir(exist_ok=True)
            dest.write_text(text)
            print(f"wrote {dest.relative_to(root)}")
    if stale:
        print("exercises/ is out of date with solutions/: "
              + ", ".join(str(p.relative_to(root)) for p in stale)
              + ". Fix: run `python -m helpers exercises build` and commit the result.")
        return 1
    if check:
        print("exercises/ is up to date with solutions/")
    return 0


def reset(lesson: str, to: str | None = None) -> Path:
    """Copy a fresh ``exercises/NN_*.ipynb`` for a learner; never overwrite anything.

    Default destination: ``my_work/NN_topic.ipynb``, or ``NN_topic-2.ipynb``,
    ``-3``... if that name is taken. Returns the new file's path.
    """
    number = f"{int(lesson):02d}" if str(lesson).isdigit() else str(lesson)
    matches = sorted((repo_root() / "exercises").glob(f"{number}_*.ipynb"))
    if not matches:
        from .models import CourseSetupError
        available = ", ".join(p.name for p in sorted((repo_root() / "exercises").glob("*.ipynb")))
        raise CourseSetupError(f"No exercise notebook for lesson {lesson!r}. Available: {available}")
    src = matches[0]
    if to:
        dest = Path(to)
        if dest.exists():
            from .models import CourseSetupError
            raise CourseSetupError(f"{dest} already exists; choose another name (nothing was overwritten).")
    else:
        folder = repo_root() / "my_work"
        folder.mkdir(exist_ok=True)
        dest, n = folder / src.name, 2
        while dest.exists():
            dest, n = folder / f"{src.stem}-{n}{src.suffix}", n + 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fsrc, open(dest, "xb") as fdst:  # "x": fail rather than overwrite
        shutil.copyfileobj(fsrc, fdst)
    return dest
