"""A submission that changes a file the checks load (here: a course model's config) stops the batch.

The attack is run against a private copy of the models folder (small files copied, weights
linked), so that no other test running at the same time sees the change.
"""

import csv
import os
import shutil
import subprocess
import sys

import nbformat
from nbformat.v4 import new_code_cell

from helpers.models import models_dir, repo_root

TOUCH = """\
import os, pathlib
config = pathlib.Path(os.environ["COURSE_MODELS_DIR"]) / "smollm2-135m-instruct" / "config.json"
st = config.stat()
os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns))  # same content, same times: only the inode change shows
"""


def _private_models(dest):
    for folder in models_dir().iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            (dest / folder.name).mkdir(parents=True)
            for f in folder.iterdir():
                if f.suffix == ".safetensors":
                    os.symlink(f, dest / folder.name / f.name)
                else:
                    shutil.copy(f, dest / folder.name / f.name)


def test_a_changed_course_file_stops_grading(tmp_path):
    _private_models(tmp_path / "models")
    subs = tmp_path / "submissions"
    subs.mkdir()
    nb = nbformat.read(repo_root() / "exercises" / "01_loading.ipynb", as_version=4)
    nb.cells.insert(2, new_code_cell(TOUCH))
    nbformat.write(nb, subs / "01_a_touches_the_model.ipynb")
    shutil.copy(repo_root() / "solutions" / "01_loading.ipynb", subs / "01_b_solution.ipynb")
    report = tmp_path / "report.csv"
    proc = subprocess.run([sys.executable, "-m", "helpers", "grade", str(subs), "--report", str(report)],
                          capture_output=True, text=True, timeout=900, cwd=repo_root(),
                          env={**os.environ, "COURSE_MODELS_DIR": str(tmp_path / "models")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(open(report)))
    touched = [r for r in rows if "01_a_" in r["notebook"]]
    assert touched and all(r["status"] == "error" and r["points"] == "0" for r in touched)
    assert "config.json" in touched[0]["message"] and "--sandbox" in touched[0]["message"]
    later = [r for r in rows if "01_b_" in r["notebook"]]
    assert [r["question"] for r in later] == ["q1", "q2", "q3", "q4"]
    assert all(r["status"] == "error" and r["points"] == "0" and r["max_points"] == "1" for r in later)
    assert "not graded" in later[0]["message"]
