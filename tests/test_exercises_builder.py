"""exercises/ is generated from solutions/: regions become placeholders, nothing else changes."""

import nbformat
import pytest

from helpers import exercises
from helpers.markers import BEGIN, END
from helpers.models import CourseSetupError, repo_root


def test_region_becomes_placeholders_for_each_assigned_name():
    src = f"x = 1\n{BEGIN} q1\na, b = 2, 3\nc: int = 4\nprint(a)\n{END}\nprint(x)"
    assert exercises.blank_out(src) == "x = 1\n# YOUR CODE HERE\na = ____\nb = ____\nc = ____\nprint(x)"


def test_indented_region_keeps_its_indentation():
    src = f"if True:\n    {BEGIN} q2\n    y = 2\n    {END}"
    assert exercises.blank_out(src) == "if True:\n    # YOUR CODE HERE\n    y = ____"


def test_region_without_assignment_gets_pass():
    assert exercises.blank_out(f"{BEGIN} q3\nprint(1)\n{END}") == "# YOUR CODE HERE\npass"


def test_unclosed_region_is_an_error():
    with pytest.raises(ValueError, match="END SOLUTION"):
        exercises.blank_out(f"{BEGIN} q1\nx = 1")


def test_exercises_are_in_sync_with_solutions():
    assert exercises.build_all(check=True) == 0


def test_exercise_has_no_solution_code_and_no_outputs():
    for sol in sorted((repo_root() / "solutions").glob("*.ipynb")):
        ex = nbformat.read(repo_root() / "exercises" / sol.name, as_version=4)
        text = nbformat.writes(ex)
        assert BEGIN not in text and END not in text
        for cell in ex.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
        assert text.count("# YOUR CODE HERE") >= 4


def test_check_mode_detects_a_stale_exercise(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    src = repo_root() / "solutions" / "01_loading.ipynb"
    (tmp_path / "solutions" / src.name).write_bytes(src.read_bytes())
    assert exercises.build_all(check=True, root=tmp_path) == 1  # missing
    assert exercises.build_all(root=tmp_path) == 0
    assert exercises.build_all(check=True, root=tmp_path) == 0
    ex = tmp_path / "exercises" / src.name
    ex.write_text(ex.read_text().replace("YOUR CODE HERE", "edited"))
    assert exercises.build_all(check=True, root=tmp_path) == 1


def test_reset_never_overwrites(tmp_path):
    first = exercises.reset("01", to=str(tmp_path / "mine.ipynb"))
    first.write_text("my work")
    with pytest.raises(CourseSetupError, match="already exists"):
        exercises.reset("1", to=str(first))
    assert first.read_text() == "my work"


def test_reset_default_picks_a_new_name_each_time(monkeypatch, tmp_path):
    monkeypatch.setattr(exercises, "repo_root", lambda: tmp_path)
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "01_loading.ipynb").write_text("{}")
    a, b = exercises.reset("01"), exercises.reset("01")
    assert (a.name, b.name) == ("01_loading.ipynb", "01_loading-2.ipynb")
    with pytest.raises(CourseSetupError, match="Available"):
        exercises.reset("42")
