"""Course updates (workshop/update.py) and graded mode's folders (workshop/graded.py), without a hub.

The merge rules, file by file: new files appear, untouched files update, edited files are kept with
the new version beside them (once per version), deleted files come back, nothing is deleted, a
copy made before the record existed is never overwritten. The hub test (tests/test_workshop.py)
runs the same merge for a real learner, as that learner.
"""

import json
from pathlib import Path

from workshop.graded import held_folders
from workshop.update import RECORD, course_files, main, merge


def _course(root: Path, files: dict) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_first_merge_copies_everything_and_records_it(tmp_path):
    course = _course(tmp_path / "course", {"notebooks/01.ipynb": "a", "exercises/01.ipynb": "b",
                                            "notebooks/.ipynb_checkpoints/01-checkpoint.ipynb": "x", "solutions/01.ipynb": "s"})
    copy = tmp_path / "home" / "course"
    (tmp_path / "home").mkdir()
    done = merge(course, copy)
    assert sorted(done) == [("exercises/01.ipynb", "added"), ("notebooks/01.ipynb", "added")]
    assert not (copy / "solutions").exists() and not (copy / "notebooks" / ".ipynb_checkpoints").exists()
    assert set(json.loads((copy / RECORD).read_text())["given"]) == {"notebooks/01.ipynb", "exercises/01.ipynb"}
    assert merge(course, copy) == []  # nothing new: nothing happens


def test_the_rules(tmp_path):
    course = _course(tmp_path / "course", {"notebooks/01.ipynb": "lesson v1", "notebooks/02.ipynb": "lesson2 v1",
                                            "exercises/01.ipynb": "exercise v1", "notebooks/gone.ipynb": "old"})
    copy = tmp_path / "course-copy"
    merge(course, copy)
    (copy / "exercises" / "01.ipynb").write_text("exercise v1 + my answers")  # the learner's work
    (copy / "notebooks" / "02.ipynb").unlink()                                # deleted by the learner
    (copy / "notebooks" / "mine.ipynb").write_text("my own notebook")          # theirs alone
    _course(course, {"notebooks/01.ipynb": "lesson v2", "exercises/01.ipynb": "exercise v2",
                     "notebooks/03.ipynb": "new lesson", "exercises/data/table.csv": "1,2"})
    (course / "notebooks" / "gone.ipynb").unlink()

    done = dict(merge(course, copy, now=1796292000))  # 2026-12-03
    assert done["notebooks/01.ipynb"] == "updated" and (copy / "notebooks" / "01.ipynb").read_text() == "lesson v2"
    assert done["notebooks/03.ipynb"] == "added" and done["exercises/data/table.csv"] == "added"
    assert done["notebooks/02.ipynb"].startswith("restored") and (copy / "notebooks" / "02.ipynb").read_text() == "lesson2 v1"
    assert (copy / "exercises" / "01.ipynb").read_text() == "exercise v1 + my answers"
    beside = sorted((copy / "exercises").glob("01.updated-*.ipynb"))
    assert len(beside) == 1 and beside[0].read_text() == "exercise v2" and beside[0].name in done["exercises/01.ipynb"]
    assert (copy / "notebooks" / "gone.ipynb").read_text() == "old"  # nothing is deleted
    assert (copy / "notebooks" / "mine.ipynb").read_text() == "my own notebook"

    assert merge(course, copy) == []  # the same version is offered once
    _course(course, {"exercises/01.ipynb": "exercise v3"})
    done = dict(merge(course, copy))
    assert "beside it" in done["exercises/01.ipynb"] and len(list((copy / "exercises").glob("01.updated-*"))) == 2
    (copy / "exercises" / "01.ipynb").write_text("exercise v3")  # the learner takes the new version over
    assert merge(course, copy) == []
    _course(course, {"exercises/01.ipynb": "exercise v4"})
    assert dict(merge(course, copy))["exercises/01.ipynb"] == "updated"  # untouched again, so it updates


def test_a_copy_without_a_record_is_never_overwritten(tmp_path):
    course = _course(tmp_path / "course", {"notebooks/01.ipynb": "v2", "notebooks/02.ipynb": "same"})
    copy = _course(tmp_path / "copy", {"notebooks/01.ipynb": "v1, or v1 with the learner's work", "notebooks/02.ipynb": "same"})
    done = dict(merge(course, copy))
    assert (copy / "notebooks" / "01.ipynb").read_text().startswith("v1") and "beside it" in done["notebooks/01.ipynb"]
    assert "notebooks/02.ipynb" not in done


def test_links_in_the_copy_are_left_alone(tmp_path):
    course = _course(tmp_path / "course", {"notebooks/01.ipynb": "v1"})
    copy = tmp_path / "copy"
    merge(course, copy)
    target = tmp_path / "elsewhere.txt"
    target.write_text("not the course's")
    (copy / "notebooks" / "01.ipynb").unlink()
    (copy / "notebooks" / "01.ipynb").symlink_to(target)
    _course(course, {"notebooks/01.ipynb": "v2"})
    assert "not a plain file" in dict(merge(course, copy))["notebooks/01.ipynb"]
    assert target.read_text() == "not the course's"


def test_course_files_skip_hidden_and_checkpoints(tmp_path):
    course = _course(tmp_path, {"notebooks/a.ipynb": "", "notebooks/.hidden": "", "notebooks/__pycache__/x.pyc": "",
                                "exercises/.ipynb_checkpoints/a.ipynb": "", "exercises/b.ipynb": ""})
    assert course_files(course) == ["notebooks/a.ipynb", "exercises/b.ipynb"]


def test_merge_command_prints_what_changed(tmp_path, capsys):
    course = _course(tmp_path / "course", {"notebooks/01.ipynb": "v1"})
    assert main(["merge", str(course), str(tmp_path / "copy")]) == 0
    assert "notebooks/01.ipynb: added" in capsys.readouterr().out


def test_graded_mode_closes_solutions_history_tests_and_copies_of_solutions(tmp_path):
    course = _course(tmp_path / "course", {"solutions/01.ipynb": "", "tests/t.py": "", ".git/HEAD": "",
                                            "build/copy/course/solutions/01.ipynb": "", "notebooks/01.ipynb": "",
                                            ".venv/lib/solutions/x": "", "build/env/pyvenv.cfg": "",
                                            "build/env/solutions/y": ""})
    found = {str(p.relative_to(course)) for p in held_folders(course)}
    assert found == {"solutions", ".git", "tests", "build/copy/course/solutions"}
