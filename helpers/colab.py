"""Google Colab: the first code cell of every notebook, what it runs there, and the "Open in Colab" links.

**The cell.** Every lesson, exercise and solution notebook starts its code with :data:`CELL`
(first line :data:`MARKER`). Outside Colab it does nothing and prints nothing. On Colab it gets
the course (a ``git clone`` of the repository URL written into the cell, or the folder named by
``COURSE_SOURCE``), puts it on ``sys.path`` and calls :func:`setup`, which

* installs the course with ``pip install -e`` under a constraints file that holds Colab's own
  torch, numpy, ipykernel, ipython, ipywidgets, jupyter_client, notebook, traitlets, tornado and
  pyzmq at the versions the running kernel has: pip adds only what Colab lacks (gguf,
  bitsandbytes) or has older than the course's lower bounds, and never replaces Colab's CUDA
  torch or the packages under its running kernel; it then checks that they are unchanged;
* builds the course models offline with ``python -m helpers prepare``, as on every other machine.
  Not the Hub's ``HuggingFaceTB/SmolLM2-135M-Instruct``, although Colab can reach it: that is the
  bfloat16 original, while the outputs stored in the lessons come from the course's float32
  checkpoint (dequantized from the Q4_1 GGUF: other weights, other greedy text), lesson 01 and the
  tests need the locally built ``tiny-random-gpt2`` anyway, and this path is the one tested here
  (``make test-colab``). It costs a 94 MB download and about half a minute.

A second run in the same runtime (every other notebook) finds a stamp and only checks the models.
The grader skips the cell (``grading/run.py``); the exercise builder keeps it.

**The links.** One setting, ``Repository`` in ``[project.urls]`` of ``pyproject.toml``, feeds
both the cell's ``git clone`` and the "Open in Colab" badges (each notebook's first markdown cell)
and links (the README's course map). ``python -m helpers colab build`` writes them; ``--check``
fails when they are stale. Without the setting (the course has no published repository yet) it
writes no link, leaves the cell's URL empty (the cell then tells the learner to upload the course
folder) and says how to set it. Colab opens notebooks from GitHub, so the setting must be a
``https://github.com/OWNER/REPO`` URL (``.../tree/BRANCH`` for a branch other than ``main``).

This module uses only the standard library: the cell imports it before the course is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

MARKER = "# COLAB SETUP (does nothing outside Colab)"

# Never installed over Colab's own: the CUDA torch that matches its driver, numpy (compiled against
# by much of the image), and the kernel and widget stack the running notebook depends on.
KEEP = ("torch", "numpy", "ipykernel", "ipython", "ipywidgets", "jupyter_client", "notebook",
        "traitlets", "tornado", "pyzmq")

CELL = '''\
{marker}
# On Colab: gets the course, installs what Colab lacks (never its torch, numpy, ipykernel,
# ipywidgets, jupyter_client) and builds the course model offline (as elsewhere; the outputs shown
# in the lessons come from it). A few minutes, once per runtime: helpers/colab.py says more.
import os, subprocess, sys
REPOSITORY = "{url}"  # written by `python -m helpers colab build` from pyproject.toml
try:
    import google.colab  # only Colab has it
except ImportError:
    pass
else:
    COURSE = os.environ.setdefault("COURSE_SOURCE", "/content/course")
    if not os.path.isdir(COURSE) and REPOSITORY:
        subprocess.run(["git", "clone", "--quiet", "--depth=1", REPOSITORY, COURSE], check=True)
    if not os.path.isdir(COURSE):
        raise SystemExit(f"No course at {{COURSE}} and no repository to clone: put it there, then run this again.")
    sys.path.insert(0, COURSE)
    from helpers.colab import setup
    setup(COURSE)'''

BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_LINE = re.compile(r"^\[!\[Open in Colab\]\([^)]*\)\]\([^)]*\)\n?", re.M)
CELL_ID = "colab-setup"
FOLDERS = ("notebooks", "solutions")  # exercises/ are built from solutions/ (helpers.exercises)


# --------------------------------------------------------------------------- on Colab

def _versions(names=None) -> dict[str, str]:
    importlib.invalidate_caches()
    found = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name and (names is None or name in names):
            found.setdefault(name, dist.version)  # the first on sys.path is the one imported
    return found


def _stream(cmd: list[str], **kwargs) -> int:
    """Run ``cmd``, printing its output line by line (a subprocess's own output would not reach
    the notebook); of a progress bar redrawn with carriage returns, only its last state. Returns
    the exit status."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\r\n").rsplit("\r", 1)[-1].rstrip()
        if line:
            print(line, flush=True)
    return proc.wait()


def setup(course: str | os.PathLike) -> None:
    """Install the course at ``course`` into this Python and build its models (see the module doc)."""
    course = Path(course).resolve()
    keep_names = {k.replace("_", "-") for k in KEEP}
    kept = _versions(keep_names)
    stamp = course / "build" / "colab-setup.json"
    key = {"python": sys.executable, "pyproject": (course / "pyproject.toml").read_text(), "kept": kept}
    if not (stamp.is_file() and json.loads(stamp.read_text()) == key):
        print("[colab] installing the course and what Colab lacks (kept as they are: "
              + ", ".join(f"{n} {v}" for n, v in sorted(kept.items())) + ")", flush=True)
        before = _versions()
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("".join(f"{n}=={v}\n" for n, v in kept.items()))
        try:
            status = _stream([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--constraint", f.name, "-e", str(course)])
        finally:
            os.unlink(f.name)
        after = _versions()
        changed = {n: (before.get(n), v) for n, v in after.items() if before.get(n) != v}
        if status:
            raise RuntimeError(f"pip could not install the course (exit {status}; its message is above).")
        moved = {n: changed[n] for n in changed if n in keep_names}
        if moved:
            raise RuntimeError(f"pip changed packages Colab's kernel depends on: {moved}. "
                               "Fix: Runtime > Disconnect and delete runtime, then report this.")
        for n, (old, new) in sorted(changed.items()):
            print(f"[colab]   {n}: {old or 'not installed'} -> {new}")
        loaded = [n for n in changed if n.replace("-", "_") in sys.modules]
        if loaded:
            print(f"[colab] {', '.join(loaded)} changed after this session imported them: "
                  "Runtime > Restart session, then run the notebook from the top.")
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(json.dumps(key))
    from .models import COURSE_MODELS, models_dir, verify
    if not all(verify(name, full=False)[0] for name in COURSE_MODELS):
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if _stream([sys.executable, "-m", "helpers", "prepare"], cwd=course, env=env):
            raise RuntimeError("building the course models failed (the message is above).")
    print(f"[colab] course ready: {course}, models in {models_dir()}", flush=True)


# --------------------------------------------------------------------------- the links

def repository_url(root: Path) -> str:
    """``Repository`` from ``[project.urls]`` in ``root/pyproject.toml``, or "" when absent."""
    pyproject = Path(root) / "pyproject.toml"
    if not pyproject.is_file():
        return ""
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
        return str(tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository", "")).strip()
    except ModuleNotFoundError:  # Python 3.10: the one key, read by hand
        table = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        found = table and re.search(r'^Repository\s*=\s*"([^"]*)"', table.group(1), re.M)
        return found.group(1).strip() if found else ""


def colab_url(repository: str, path: str) -> str:
    """The Colab address that opens ``path`` (relative to the repository root) from a GitHub
    ``repository`` URL; "" when there is no repository. Raises ValueError for a non-GitHub URL."""
    if not repository:
        return ""
    m = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?(?:/tree/([\w./-]+))?/?", repository)
    if not m:
        raise ValueError(f"Repository = {repository!r} in pyproject.toml [project.urls]: Colab opens notebooks "
                         "from GitHub; use https://github.com/OWNER/REPO (or .../tree/BRANCH).")
    owner, repo, branch = m.group(1), m.group(2), m.group(3) or "main"
    return f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{path}"


def clone_url(repository: str) -> str:
    """What the cell clones: the repository without a ``/tree/BRANCH`` tail."""
    return re.sub(r"/tree/.*$", "", repository).rstrip("/")


def cell_source(repository: str) -> str:
    return CELL.format(marker=MARKER, url=clone_url(repository))


def is_setup_cell(cell) -> bool:
    """Whether a notebook cell is the Colab cell (the grader leaves it out)."""
    return cell.get("cell_type") == "code" and str(cell.get("source", "")).startswith(MARKER)


def apply(nb, path: str, repository: str) -> None:
    """Make ``nb`` (at ``path`` in the repository) current: the Colab cell first among its code
    cells, and an "Open in Colab" badge in its first markdown cell only when there is a repository."""
    from nbformat.v4 import new_code_cell

    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if code and is_setup_cell(nb.cells[code[0]]):
        cell = nb.cells[code[0]]
    else:
        cell = new_code_cell(id=CELL_ID)
        nb.cells.insert(code[0] if code else len(nb.cells), cell)
    cell.source = cell_source(repository)  # its outputs and run metadata are left as `make execute` wrote them
    markdown = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if markdown is not None:
        text = BADGE_LINE.sub("", markdown.source)
        url = colab_url(repository, path)
        markdown.source = f"[![Open in Colab]({BADGE})]({url})\n" + text if url else text


def _readme_links(text: str, repository: str) -> str:
    """The README's course map with a Colab link after each notebook link (or none without a repository)."""
    start = text.find("## Course map")
    end = text.find("\n#", start + 1) if start >= 0 else -1
    if start < 0:
        return text
    end = len(text) if end < 0 else end
    part = re.sub(r" \[\(Colab\)\]\([^)]*\)", "", text[start:end])
    if repository:
        part = re.sub(r"(\[[^\]]*\]\(((?:notebooks|exercises)/[\w.-]+\.ipynb)\))",
                      lambda m: f"{m.group(1)} [(Colab)]({colab_url(repository, m.group(2))})", part)
    return text[:start] + part + text[end:]


def build_all(check: bool = False, root: Path | None = None) -> int:
    """Write the Colab cell and links into notebooks/, solutions/ and the README (``python -m helpers
    colab build`` then rebuilds exercises/ from solutions/, :mod:`helpers.exercises`).

    With ``check=True`` only report what is stale. Returns 0 when up to date, 1 otherwise.
    """
    import nbformat

    from .models import repo_root

    root = Path(root or repo_root())
    repository = repository_url(root)
    colab_url(repository, "")  # a non-GitHub setting fails here, before anything is written
    stale = []
    for folder in FOLDERS:
        for path in sorted((root / folder).glob("[0-9][0-9]*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            apply(nb, f"{folder}/{path.name}", repository)
            text = nbformat.writes(nb) + "\n"
            if path.read_text(encoding="utf-8") != text:
                stale.append(path.relative_to(root))
                if not check:
                    path.write_text(text, encoding="utf-8")
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    if _readme_links(text, repository) != text:
        stale.append(readme.relative_to(root))
        if not check:
            readme.write_text(_readme_links(text, repository), encoding="utf-8")
    if not repository:
        print("No Repository in pyproject.toml [project.urls]: no Colab links written, and the Colab cell has "
              "no URL to clone. Once the course is published, add\n  [project.urls]\n  Repository = "
              '"https://github.com/OWNER/REPO"\nto pyproject.toml and run `python -m helpers colab build`.')
    if check and stale:
        print("Colab cells or links are out of date with pyproject.toml: " + ", ".join(map(str, stale))
              + ". Fix: run `python -m helpers colab build` and commit the result.")
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0
