"""The instructor's progress view: ``qN.check()`` records outcomes; ``helpers progress`` summarizes them."""

import json

from helpers.__main__ import main
from helpers.checking import Question, expect, numbered
from helpers.progress import format_progress, summarize


def _questions():
    def positive(x):
        expect(x > 0, "x should be positive")
    return numbered(Question("a positive number", ["x"], positive), notebook="01_loading.ipynb")


def _check_as(home, monkeypatch, **namespace):
    """Run ``q1.check()`` from a namespace that holds ``namespace``, as a learner whose home is ``home``."""
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(home / ".course_progress.jsonl"))
    (q1,) = _questions()
    exec("q1.check()", {"q1": q1, **namespace})


def test_check_records_the_outcome_and_nothing_else(tmp_path, monkeypatch):
    _check_as(tmp_path / "ada", monkeypatch, x=-1)
    _check_as(tmp_path / "ada", monkeypatch, x=3)
    lines = (tmp_path / "ada" / ".course_progress.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["status"] for r in records] == ["incorrect", "correct"]
    assert set(records[0]) == {"notebook", "question", "status", "time"}  # no answers, no code
    assert records[0]["notebook"] == "01_loading.ipynb" and records[0]["question"] == "q1"


def test_empty_setting_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_PROGRESS_FILE", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    (q1,) = _questions()
    exec("q1.check()", {"q1": q1, "x": 1})
    assert list(tmp_path.iterdir()) == []


def test_unwritable_progress_file_does_not_break_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path / "no-such-folder" / "p.jsonl"))
    (q1,) = _questions()
    exec("q1.check()", {"q1": q1, "x": 1})
    assert "Correct" in capsys.readouterr().out


def test_summary_is_a_learner_by_question_table(tmp_path, monkeypatch, capsys):
    for _ in range(3):
        _check_as(tmp_path / "bob", monkeypatch, x=0)
    _check_as(tmp_path / "ada", monkeypatch, x=5)
    (tmp_path / "carl").mkdir()  # a learner who has checked nothing yet has no file
    (tmp_path / "bob" / ".course_progress.jsonl").open("a").write("not json\n")
    rows = {r["learner"]: r for r in summarize([tmp_path])}
    assert rows["bob"]["status"] == "incorrect" and rows["bob"]["attempts"] == 3
    assert rows["ada"]["status"] == "correct" and rows["ada"]["attempts"] == 1
    table = format_progress(list(rows.values()))
    assert "01/q1" in table and "x/3" in table and "ok/1" in table
    assert "1 question(s) checked 3+ times and not yet correct" in table

    assert main(["progress", str(tmp_path), "--csv", str(tmp_path / "p.csv")]) == 0
    assert "bob" in capsys.readouterr().out
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "learner,notebook,question,status,attempts,last"


def test_missing_folder_is_an_error(tmp_path, capsys):
    assert main(["progress", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_learner_strings_are_escaped_in_the_table_and_the_csv(tmp_path, capsys):
    home = tmp_path / "eve"
    home.mkdir()
    line = {"notebook": "01\x1b[2J_loading.ipynb", "question": "=HYPERLINK(\"http://x\")", "status": "correct",
            "time": "\x1b[31mlate"}
    (home / ".course_progress.jsonl").write_text(json.dumps(line) + "\n")
    assert main(["progress", str(tmp_path), "--csv", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b" in out
    text = (tmp_path / "p.csv").read_text()
    assert "\x1b" not in text and "'=HYPERLINK" in text


def test_a_linked_or_foreign_file_does_not_count_under_another_name(tmp_path, monkeypatch):
    import os
    _check_as(tmp_path / "ada", monkeypatch, x=5)
    (tmp_path / "mallory").mkdir()
    (tmp_path / "mallory" / ".course_progress.jsonl").symlink_to(tmp_path / "ada" / ".course_progress.jsonl")
    (tmp_path / "trudy").mkdir()
    (tmp_path / "trudy" / ".course_progress.jsonl").write_text((tmp_path / "ada" / ".course_progress.jsonl").read_text())
    if os.geteuid() == 0:  # a file in trudy's home that trudy does not own (root can give it away)
        os.chown(tmp_path / "trudy", 12345, 12345)
    learners = {r["learner"] for r in summarize([tmp_path])}
    assert "ada" in learners and "mallory" not in learners
    assert ("trudy" in learners) == (os.geteuid() != 0)


def test_a_huge_progress_file_is_read_only_at_its_end(tmp_path):
    from helpers.progress import MAX_READ_BYTES, read_records
    path = tmp_path / ".course_progress.jsonl"
    with open(path, "wb") as f:
        f.seek(2 * 2**30)  # a 2 GB sparse file: nothing of it is read but its end
        f.write(b"\n" + json.dumps({"notebook": "01_loading.ipynb", "question": "q1", "status": "correct",
                                    "time": "t"}).encode() + b"\n")
    records = read_records(path)
    assert records == [{"notebook": "01_loading.ipynb", "question": "q1", "status": "correct", "time": "t"}]
    assert MAX_READ_BYTES <= 8 * 2**20
