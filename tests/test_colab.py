"""The Colab cell and the "Open in Colab" links (helpers/colab.py); the Colab profile itself is
`make test-colab` (tools/colab_profile.py), too slow for this suite.

* every lesson, solution and exercise notebook starts its code with the cell, as the build writes it;
* no notebook and no README line holds a Colab link (or a clone URL) that the one setting,
  ``Repository`` in pyproject.toml, does not give; with a setting the build writes them, and
  taking the setting away takes them all out again;
* outside Colab the cell does nothing; on Colab with no course and no URL it says what to do;
* the grader leaves the cell out: a solution whose Colab cell would kill the kernel grades correct.
"""

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import colab
from helpers.models import repo_root

ROOT = repo_root()
NOTEBOOKS = sorted(p for folder in ("notebooks", "solutions", "exercises")
                   for p in (ROOT / folder).glob("[0-9][0-9]*.ipynb"))
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'\]]+")


def _first_code(nb):
    return next(c for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_starts_its_code_with_the_colab_cell(path):
    cell = _first_code(nbformat.read(path, as_version=4))
    assert cell.source == colab.cell_source(colab.repository_url(ROOT))
    assert colab.is_setup_cell(cell)
    assert cell.outputs == [], "outside Colab the cell prints nothing, so it stores no output"


def test_the_cells_and_links_are_up_to_date_with_the_setting():
    assert colab.build_all(check=True) == 0


def test_no_colab_link_or_clone_url_that_the_setting_does_not_give():
    repository = colab.repository_url(ROOT)
    for path in NOTEBOOKS:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        expected = {colab.colab_url(repository, rel)} - {""}
        assert set(COLAB_LINK.findall(text)) == expected, rel
        for cell in nbformat.reads(text, as_version=4).cells:
            for url in re.findall(r"https://github\.com/[^\s)\"'\]]*", cell.source):
                assert repository and url.startswith(colab.clone_url(repository)), f"{rel}: {url}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for url in COLAB_LINK.findall(readme):
        assert repository, f"README links to Colab with no Repository setting: {url}"
        path = url.split("/blob/", 1)[1].split("/", 1)[1]
        assert url == colab.colab_url(repository, path) and (ROOT / path).is_file(), url


def _course_copy(tmp_path, repository=None):
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder, name in (("notebooks", "01_loading.ipynb"), ("solutions", "01_loading.ipynb")):
        (tmp_path / folder).mkdir()
        shutil.copy(ROOT / folder / name, tmp_path / folder / name)
    (tmp_path / "exercises").mkdir()
    shutil.copy(ROOT / "exercises" / "01_loading.ipynb", tmp_path / "exercises" / "01_loading.ipynb")
    if repository is not None:
        _set_repository(tmp_path, repository)
    return tmp_path


def _set_repository(root, repository):
    text = re.sub(r"(?ms)^\[project\.urls\].*?(?=^\[|\Z)", "", (root / "pyproject.toml").read_text())
    (root / "pyproject.toml").write_text(text + f'\n[project.urls]\nRepository = "{repository}"\n')


def _build(root, check=False):
    """What ``python -m helpers colab build`` does: the cells and links, then exercises/ from solutions/."""
    from helpers import exercises
    return colab.build_all(check=check, root=root) or exercises.build_all(check=check, root=root)


def test_a_setting_writes_every_link_and_removing_it_takes_them_out(tmp_path, capsys):
    root = _course_copy(tmp_path, "https://github.com/example-org/llm-course/tree/v1")
    originals = {p: p.read_bytes() for p in root.rglob("*") if p.suffix in (".ipynb", ".md")}
    assert _build(root, check=True) == 1
    assert _build(root) == 0 and _build(root, check=True) == 0
    base = "https://colab.research.google.com/github/example-org/llm-course/blob/v1/"
    for rel in ("notebooks/01_loading.ipynb", "solutions/01_loading.ipynb", "exercises/01_loading.ipynb"):
        nb = nbformat.read(root / rel, as_version=4)
        first_markdown = next(c for c in nb.cells if c.cell_type == "markdown")
        assert first_markdown.source.startswith(f"[![Open in Colab]({colab.BADGE})]({base}{rel})\n"), rel
        assert 'REPOSITORY = "https://github.com/example-org/llm-course"' in _first_code(nb).source
    readme = (root / "README.md").read_text()
    assert f"[loading](notebooks/01_loading.ipynb) [(Colab)]({base}notebooks/01_loading.ipynb)" in readme
    assert f"[01](exercises/01_loading.ipynb) [(Colab)]({base}exercises/01_loading.ipynb)" in readme
    assert readme.count("[(Colab)]") == 2 * 6 + 3  # 9 lessons, 6 exercises
    # back to no setting: every link goes, the files are as they were
    _set_repository(root, "")
    assert _build(root) == 0
    assert "no Colab links written" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in originals} == originals


def test_a_setting_that_colab_cannot_open_is_refused(tmp_path):
    root = _course_copy(tmp_path, "https://gitlab.com/example-org/llm-course")
    before = (root / "notebooks" / "01_loading.ipynb").read_bytes()
    with pytest.raises(ValueError, match="GitHub"):
        colab.build_all(root=root)
    assert (root / "notebooks" / "01_loading.ipynb").read_bytes() == before


def _run_cell(tmp_path, env_extra, stub):
    cell = colab.cell_source("")
    path = [str(ROOT)]
    if stub:
        (tmp_path / "stub" / "google" / "colab").mkdir(parents=True)
        (tmp_path / "stub" / "google" / "colab" / "__init__.py").write_text("")
        path.insert(0, str(tmp_path / "stub"))
    probe = cell + "\nprint('END', os.getcwd(), len(sys.path))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), **env_extra}
    env.pop("COURSE_SOURCE", None) if "COURSE_SOURCE" not in env_extra else None
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=60)


def test_outside_colab_the_cell_does_nothing(tmp_path):
    proc = _run_cell(tmp_path, {}, stub=False)
    assert proc.returncode == 0 and proc.stderr == ""
    baseline = subprocess.run([sys.executable, "-c", "import os, sys; print('END', os.getcwd(), len(sys.path))"],
                              capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout == baseline.stdout, "it printed something, or changed the folder or sys.path"


def test_on_colab_without_a_course_or_a_url_the_cell_says_what_to_do(tmp_path):
    proc = _run_cell(tmp_path, {"COURSE_SOURCE": str(tmp_path / "nowhere")}, stub=True)
    assert proc.returncode == 1 and "END" not in proc.stdout
    assert f"No course at {tmp_path / 'nowhere'} and no repository to clone" in proc.stderr


@pytest.mark.slow
def test_the_grader_leaves_the_colab_cell_out(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "01_loading.ipynb", as_version=4)
    cell = _first_code(nb)
    assert colab.is_setup_cell(cell)
    cell.source = colab.MARKER + "\nimport os\nos._exit(1)  # would kill the kernel, were it run"
    folder = tmp_path / "submissions"
    folder.mkdir()
    nbformat.write(nb, folder / "01_colab_cell.ipynb")
    report = tmp_path / "report.csv"
    proc = subprocess.run([sys.executable, "-m", "helpers", "grade", str(folder), "--timeout", "120",
                           "--jobs", "1", "--report", str(report)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(report)))
    assert {r["question"]: r["status"] for r in rows} == dict.fromkeys(["q1", "q2", "q3", "q4"], "correct")
    assert "kernel died" not in proc.stdout + proc.stderr




@pytest.mark.parametrize("tomllib", [True, False], ids=["tomllib", "python-3.10"])
def test_the_setting_is_read_with_and_without_tomllib(tmp_path, monkeypatch, tomllib):
    if not tomllib:
        monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10: import tomllib fails
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[project.urls]\nHomepage = "h"\n'
                                             'Repository = "https://github.com/o/r"\n\n[tool.x]\nRepository = "no"\n')
    assert colab.repository_url(tmp_path) == "https://github.com/o/r"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.x]\nRepository = "no"\n')
    assert colab.repository_url(tmp_path) == ""
