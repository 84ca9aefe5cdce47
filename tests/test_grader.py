"""The instructor's grader on crafted submissions: each reported truthfully, none modified.

All submissions are graded in one `python -m helpers grade` run (the real command line),
with a short per-cell timeout, two at a time. Two real solution notebooks (lessons 01 and 03)
are graded end to end and must come out all correct; every other solution notebook runs
under nbval, whose checked `qN.check()` cells must print "Correct".

The forging attempts (``01_forge_*``, code in tests/forgeries.py) are what a curious learner who
read the grader would try; each must earn nothing. Editing the course's files stops a batch
(tests/test_grader_integrity.py); the sandbox is probed from inside (tests/test_grader_sandbox.py).
"""

import csv
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import forgeries
import nbformat
import pytest
from nbformat.v4 import new_code_cell

from helpers.models import repo_root

SOLUTION = repo_root() / "solutions" / "01_loading.ipynb"
SOLUTION_03 = repo_root() / "solutions" / "03_dtypes.ipynb"
EXERCISE = repo_root() / "exercises" / "01_loading.ipynb"
TIMEOUT = 45  # seconds per cell (the infinite loop costs this much)
MARKER = Path(f"/tmp/course-grader-test-leftover-{os.getpid()}")  # written if a leftover process survives
ZOMBIE_MARKER = Path(f"/tmp/course-grader-test-zombie-{os.getpid()}")
BLANK = dict.fromkeys(["q1", "q2", "q3", "q4"], "not_attempted")
NO_ANSWERS_SAVED = dict.fromkeys(["q1", "q2", "q3", "q4"], "error")


def _insert(nb_path, after_text, code):
    """A copy of a notebook with a code cell inserted after the first cell containing after_text."""
    nb = nbformat.read(nb_path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if after_text in c.source)
    nb.cells.insert(i + 1, new_code_cell(code))
    return nb


def _without(nb_path, text):
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells = [c for c in nb.cells if text not in c.source]
    return nb


def _replace_all(nb_path, pairs):
    nb = nbformat.read(nb_path, as_version=4)
    for old, new in pairs:
        assert any(old in c.source for c in nb.cells), old
        for c in nb.cells:
            c.source = c.source.replace(old, new)
    return nb


def _replace(nb_path, old, new):
    return _replace_all(nb_path, [(old, new)])


SUBMISSIONS = {
    # name: (notebook, {question: expected status}, text expected in the messages or None)
    "01_solution": (lambda: nbformat.read(SOLUTION, as_version=4), dict.fromkeys(["q1", "q2", "q3", "q4"], "correct"), None),
    "03_solution": (lambda: nbformat.read(SOLUTION_03, as_version=4),
                    dict.fromkeys(["q1", "q2", "q3", "q4", "q5"], "correct"), None),
    # right answers written differently: a cast instead of dtype=, a class name, a tensor count, a list of ids
    "01_written_differently": (lambda: _replace_all(SOLUTION, [
        ("AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16, device_map=best_device())",
         "AutoModelForCausalLM.from_pretrained(MODEL).to(torch.bfloat16).to(best_device())"),
        ("dispatched_class = type(AutoModelForCausalLM.from_pretrained(TINY))",
         "dispatched_class = type(AutoModelForCausalLM.from_pretrained(TINY)).__name__"),
        ("n_params = sum(p.numel() for p in model.parameters())",
         "n_params = torch.tensor(model.num_parameters())"),
        ("print(tokenizer.decode(greedy_ids[0]))", "greedy_ids = greedy_ids[0].tolist()")]),
        dict.fromkeys(["q1", "q2", "q3", "q4"], "correct"), None),
    "01_blank": (lambda: nbformat.read(EXERCISE, as_version=4), dict.fromkeys(["q1", "q2", "q3", "q4"], "not_attempted"), None),
    "01_wrong_q3": (lambda: _replace(SOLUTION, "n_params = sum(p.numel() for p in model.parameters())",
                                     "n_params = sum(t.numel() for t in model.state_dict().values())"),
                    {"q1": "correct", "q2": "correct", "q3": "incorrect", "q4": "correct"}, "twice"),
    "01_infinite_loop": (lambda: _insert(EXERCISE, "q1.check()", "while True:\n    pass"),
                         dict.fromkeys(["q1", "q2", "q3", "q4"], "not_attempted"), "ran over the time limit"),
    "01_sys_exit": (lambda: _insert(EXERCISE, "q2.check()", "import sys\nsys.exit()"),
                    dict.fromkeys(["q1", "q2", "q3", "q4"], "not_attempted"), "SystemExit"),
    "01_kernel_dies": (lambda: _insert(SOLUTION, "q2.check()", "import os\nos._exit(1)"),
                       {"q1": "correct", "q2": "correct", "q3": "not_attempted", "q4": "not_attempted"},
                       "kernel died"),
    "01_huge_output": (lambda: _insert(EXERCISE, "q1.check()", "print('x' * 50_000_000)"),
                       dict.fromkeys(["q1", "q2", "q3", "q4"], "not_attempted"), "output over 1 MB was dropped"),
    "01_redefined_check": (lambda: _insert(EXERCISE, "q1.check()",
                                           "import helpers.checks.lesson01 as L\n"
                                           "L._check_q1 = lambda **kw: None\n"
                                           "q1.check = lambda: print('q1: Correct')\n"
                                           "model_bf16 = 'definitely a model'\nq1.check()"),
                           {"q1": "incorrect", "q2": "not_attempted"}, None),
    "01_no_check_cells": (lambda: _without(SOLUTION, ".check()"), dict.fromkeys(["q1", "q2", "q3", "q4"], "correct"), None),
    "01_fake_correct": (lambda: _insert(EXERCISE, "q1.check()", "print('q1: Correct')\nprint('q2: Correct')"),
                        dict.fromkeys(["q1", "q2", "q3", "q4"], "not_attempted"), None),
    "01_forge_json_dump": (lambda: _insert(EXERCISE, "q4.check()", forgeries.JSON_DUMP), BLANK, None),
    "01_forge_shadow_package": (lambda: _insert(EXERCISE, "q4.check()", forgeries.SHADOW_PACKAGE),
                                NO_ANSWERS_SAVED, "no answer was saved"),
    "01_forge_input_transformer": (lambda: _insert(EXERCISE, "q4.check()", forgeries.INPUT_TRANSFORMER),
                                   NO_ANSWERS_SAVED, "no answer was saved"),
    "01_forge_patched_import": (lambda: _insert(EXERCISE, "q4.check()", forgeries.PATCHED_IMPORT),
                                NO_ANSWERS_SAVED, "no answer was saved"),
    "01_forge_planted_answers": (lambda: _insert(EXERCISE, "q1.check()", forgeries.PLANTED_ANSWERS),
                                 {**BLANK, "q1": "error"}, "not a regular file"),
    "01_forge_leftover_process": (lambda: _insert(EXERCISE, "q4.check()",
                                                  forgeries.LEFTOVER_PROCESS.format(marker=str(MARKER))),
                                  BLANK, "left running were killed"),
    "01_forge_zombie_thread": (lambda: _insert(EXERCISE, "q4.check()",
                                               forgeries.ZOMBIE_THREAD.format(marker=str(ZOMBIE_MARKER))),
                               BLANK, "left running were killed"),
    "01_forge_bytecode": (lambda: _insert(EXERCISE, "q4.check()", forgeries.PLANTED_BYTECODE), BLANK, None),
    # sorted before 01_solution: a planted "tampered" event must not stop the batch for those after it
    "01_forge_tampered_flag": (lambda: _insert(EXERCISE, "q4.check()", forgeries.TAMPERED_FLAG), BLANK, None),
    "01_forge_escapes": (lambda: _insert(EXERCISE, "q1.check()", forgeries.ESCAPES), BLANK, "\\x1b[2J"),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for name, (make, _, _) in SUBMISSIONS.items():
        nbformat.write(make(), folder / f"{name}.ipynb")
    before = {p.name: _digest(p) for p in folder.iterdir()}
    report = folder.parent / "report.csv"
    judge_pyc = Path(importlib.util.cache_from_source(str(repo_root() / "grading" / "judge.py")))
    kept = judge_pyc.read_bytes() if judge_pyc.exists() else None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "helpers", "grade", str(folder), "--timeout", str(TIMEOUT),
             "--jobs", "2", "--report", str(report), "--answers", str(folder.parent / "answers")],
            capture_output=True, text=True, timeout=1500, cwd=repo_root())
    finally:  # 01_forge_bytecode planted a cache of the judge's module: put back what was there
        if kept is None:
            judge_pyc.unlink(missing_ok=True)
        else:
            judge_pyc.write_bytes(kept)
    after = {p.name: _digest(p) for p in folder.iterdir()}
    rows = list(csv.DictReader(open(report)))
    return proc, rows, before, after, folder


@pytest.mark.slow
def test_grading_runs_and_exits_zero(graded):
    proc, rows, *_ = graded
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checks passed" in proc.stdout and "WARNING" not in proc.stdout
    assert {r["notebook"].rsplit("/", 1)[-1][:-6] for r in rows} == set(SUBMISSIONS)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_each_submission_is_reported_truthfully(graded, name):
    proc, rows, *_ = graded
    _, expected, text = SUBMISSIONS[name]
    mine = {r["question"]: r for r in rows if r["notebook"].endswith(f"/{name}.ipynb")}
    got = {q: mine[q]["status"] for q in expected}
    assert got == expected, {q: mine[q]["message"] for q in expected}
    for r in mine.values():
        assert set(r) == {"notebook", "question", "status", "message", "points", "max_points"}
        assert int(r["points"]) == (int(r["max_points"]) if r["status"] == "correct" else 0)
    if text:
        assert any(text in r["message"] for r in mine.values())


@pytest.mark.slow
def test_no_forgery_earns_anything(graded):
    _, rows, *_ = graded
    forged = [r for r in rows if "/01_forge_" in r["notebook"]]
    assert len(forged) == 4 * sum(name.startswith("01_forge_") for name in SUBMISSIONS)
    assert all(int(r["points"]) == 0 for r in forged), [r for r in forged if int(r["points"])]


@pytest.mark.slow
def test_nothing_a_submission_started_outlives_its_grading(graded):
    assert not MARKER.exists(), "a process started by 01_forge_leftover_process survived its grading"
    assert not ZOMBIE_MARKER.exists(), "a zombie's thread started by 01_forge_zombie_thread survived its grading"


@pytest.mark.slow
def test_no_control_character_or_formula_reaches_the_terminal_or_the_report(graded):
    proc, _, _, _, folder = graded
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout.replace("\r\n", "\n")
    report = (folder.parent / "report.csv").read_text()
    assert "\x1b" not in report and "\\x1b[2J" in report
    assert all(not c.startswith(("=", "+", "-", "@")) for r in csv.reader(report.splitlines()) for c in r)


@pytest.mark.slow
def test_regrade_judges_the_kept_answers_again(graded):
    _, rows, _, _, folder = graded
    proc = subprocess.run([sys.executable, "-m", "helpers", "grade", "--regrade", str(folder.parent / "answers"),
                           "--report", str(folder.parent / "regraded.csv")],
                          capture_output=True, text=True, timeout=600, cwd=repo_root())
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = list(csv.DictReader(open(folder.parent / "regraded.csv")))
    assert [(r["notebook"], r["question"], r["status"], r["points"]) for r in again] == \
        [(r["notebook"], r["question"], r["status"], r["points"]) for r in rows]


@pytest.mark.slow
def test_no_submission_is_modified(graded):
    _, _, before, after, _ = graded
    assert before == after


def test_usage_errors_exit_nonzero(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "helpers", "grade", *args],
                              capture_output=True, text=True, cwd=repo_root())
    assert run(str(tmp_path / "missing.ipynb")).returncode == 2
    assert run(str(tmp_path)).returncode == 2  # empty folder: nothing to grade
    assert run(str(SOLUTION), "--report", str(tmp_path / "r.txt")).returncode == 2




def test_a_broken_check_scores_zero_is_flagged_and_still_counts():
    from grading.report import format_table, row
    rows = [row("alice.ipynb", "q1", "correct", ""), row("alice.ipynb", "q2", "check_failed", "the check failed"),
            row("alice.ipynb", "q3", "skipped", "needs a GPU"), row("bob.ipynb", "q1", "incorrect", "no")]
    assert [(r["points"], r["max_points"]) for r in rows] == [(1, 1), (0, 1), (0, 0), (0, 1)]
    table = format_table(rows)
    assert "BUG" in table.splitlines()[1] and "1/2" in table.splitlines()[1]  # a crash does not raise her ratio
    assert "1/3 checks passed" in table and "WARNING: 1 check(s) failed to run (BUG) and scored 0" in table
    assert "--regrade" in table and "BUG = problem with the check" in table


@pytest.mark.slow
def test_a_roster_gives_a_gradebook_with_missing_work_and_strays(graded):
    _, _, _, _, folder = graded
    roster = folder.parent / "roster.csv"
    roster.write_text("id,name,email,path\n"
                      f"s1,Alice,alice@example.org,{folder.name}/01_solution.ipynb\n"
                      f"s2,Bob,bob@example.org,{folder.name}/01_blank.ipynb\n"
                      "s3,Carl,carl@example.org,nothing-handed-in\n")
    book = folder.parent / "gradebook.csv"
    proc = subprocess.run([sys.executable, "-m", "helpers", "grade", "--regrade", str(folder.parent / "answers"),
                           "--roster", str(roster), "--gradebook", str(book)],
                          capture_output=True, text=True, timeout=600, cwd=repo_root())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(csv.reader(open(book))) == [
        ["id", "name", "email", "section", "Exercise 01", "Exercise 03", "total", "max", "missing"],
        ["s1", "Alice", "alice@example.org", "", "4", "0", "4", "9", "03"],
        ["s2", "Bob", "bob@example.org", "", "0", "0", "0", "9", "03"],
        ["s3", "Carl", "carl@example.org", "", "0", "0", "0", "9", "01 03"],
    ]
    assert "not on the roster" in proc.stdout and "03_solution.ipynb" in proc.stdout
