"""The gradebook an LMS imports: one row per roster learner, one column per exercise, 0 for work not
handed in, notebooks nobody on the roster owns listed (grading/gradebook.py). Checked cell by cell
in each format; the end-to-end run from real grading is in tests/test_grader.py."""

import csv
import json

import pytest

from grading import gradebook
from grading.report import row

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def term(tmp_path):
    subs = tmp_path / "submissions"
    for rel in ("ada/01_loading.ipynb", "ada/02_generation.ipynb", "ada/02_generation-2.ipynb",
                "bob/01_loading.ipynb", "stray/01_loading.ipynb"):
        (subs / rel).parent.mkdir(parents=True, exist_ok=True)
        (subs / rel).write_text(json.dumps(NOTEBOOK))
    (tmp_path / "roster.csv").write_text(
        "id,name,email,path,section\n"
        "s1,Ada Lovelace,ada@example.org,submissions/ada,A\n"
        "s2,Bob,bob@example.org,submissions/bob/01_loading.ipynb,A\n"
        "s3,Carl =SUM(A1),carl@example.org,submissions/carl,B\n")  # carl handed in nothing
    rows = []
    for rel, results in [("ada/01_loading.ipynb", ["correct", "correct", "incorrect", "correct"]),
                         ("ada/02_generation.ipynb", ["correct", "not_attempted", "check_failed", "error", "correct"]),
                         ("ada/02_generation-2.ipynb", ["correct", "correct", "correct", "error", "correct"]),
                         ("bob/01_loading.ipynb", ["incorrect", "skipped", "correct", "correct"]),
                         ("stray/01_loading.ipynb", ["correct"] * 4)]:
        rows += [row(str(subs / rel), f"q{i}", status, "") for i, status in enumerate(results, 1)]
    return gradebook.build(rows, gradebook.read_roster(str(tmp_path / "roster.csv"))), tmp_path


def _cells(path):
    return list(csv.reader(open(path, newline="")))


def test_plain_gradebook_cell_by_cell(term):
    book, tmp = term
    gradebook.write(book, str(tmp / "g.csv"), "plain")
    assert _cells(tmp / "g.csv") == [
        ["id", "name", "email", "section", "Exercise 01", "Exercise 02", "total", "max", "missing"],
        ["s1", "Ada Lovelace", "ada@example.org", "A", "3", "4", "7", "9", ""],  # the better of two 02s
        ["s2", "Bob", "bob@example.org", "A", "2", "0", "2", "9", "02"],
        ["s3", "Carl =SUM(A1)", "carl@example.org", "B", "0", "0", "0", "9", "01 02"],
    ]
    assert book.unmatched == [(str(tmp / "submissions/stray/01_loading.ipynb"), "01", 4, 4)]
    assert any("not on the roster" in line and "stray" in line for line in gradebook.summary(book))
    assert any("missing (scored 0): s3" in line for line in gradebook.summary(book))


def test_canvas_gradebook_has_canvas_import_columns_and_points_possible(term):
    book, tmp = term
    gradebook.write(book, str(tmp / "c.csv"), "canvas")
    assert _cells(tmp / "c.csv") == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Exercise 01", "Exercise 02"],
        ["    Points Possible", "", "", "", "", "4", "5"],
        ["Ada Lovelace", "", "s1", "ada@example.org", "A", "3", "4"],
        ["Bob", "", "s2", "bob@example.org", "A", "2", "0"],
        ["Carl =SUM(A1)", "", "s3", "carl@example.org", "B", "0", "0"],
    ]


def test_moodle_gradebook_has_an_identifier_column_and_a_total(term):
    book, tmp = term
    gradebook.write(book, str(tmp / "m.csv"), "moodle")
    cells = _cells(tmp / "m.csv")
    assert cells[0] == ["ID number", "Email address", "Full name", "Exercise 01", "Exercise 02", "Total"]
    assert cells[1:] == [["s1", "ada@example.org", "Ada Lovelace", "3", "4", "7"],
                         ["s2", "bob@example.org", "Bob", "2", "0", "2"],
                         ["s3", "carl@example.org", "Carl =SUM(A1)", "0", "0", "0"]]


def test_a_formula_in_a_name_is_not_run_by_a_spreadsheet(tmp_path):
    learner = gradebook.Learner("=1+1", "@cmd", "-x", tmp_path)
    book = gradebook.Gradebook(["01"], {"01": 4}, {}, [learner], [])
    gradebook.write(book, str(tmp_path / "g.csv"))
    assert _cells(tmp_path / "g.csv")[1][:3] == ["'=1+1", "'@cmd", "'-x"]


@pytest.mark.parametrize("text, says", [
    ("id,name,path\ns1,Ada,x\n", "missing: email"),
    ("id,name,email,path\n,Ada,a@x,x\n", "needs an id and a path"),
    ("id,name,email,path\ns1,Ada,a@x,x\ns1,Bob,b@x,y\n", "appears twice"),
])
def test_a_bad_roster_says_what_to_fix(tmp_path, text, says):
    (tmp_path / "r.csv").write_text(text)
    with pytest.raises(gradebook.RosterError, match=says):
        gradebook.read_roster(str(tmp_path / "r.csv"))
