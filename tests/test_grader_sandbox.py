"""``grade --sandbox``: an honest notebook still grades correct; a probe from inside finds no way out.

Skipped (with the reason) where bubblewrap is missing or cannot create namespaces; `make test`
installs Debian's bubblewrap when it runs as root.
"""

import csv
import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from grading.sandbox import available
from helpers.models import repo_root

WHY_NOT = available()

PROBE = """\
import glob, os, pathlib, socket, sys
import helpers
from helpers.models import model_path
leaks = []
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    leaks.append("network")
except OSError:
    pass
for target in (helpers.__file__, sys.executable, model_path() / "config.json", "/etc/hostname-probe"):
    try:
        open(target, "a").close()
        leaks.append(f"wrote {target}")
    except OSError:
        pass
if os.getuid() != 65534:
    leaks.append(f"uid {os.getuid()}")
if [p for p in glob.glob("/tmp/grade-*") if not os.getcwd().startswith(p)] or glob.glob("/home/*") or pathlib.Path("/root/.bashrc").exists():
    leaks.append("sees other folders")
if len([p for p in os.listdir("/proc") if p.isdigit()]) > 30:
    leaks.append("sees other processes")
if "COURSE_TEST_SECRET" in os.environ or any("secret-token" in v for v in os.environ.values()):
    leaks.append("sees the grader's environment")
course = pathlib.Path(helpers.__file__).resolve().parent.parent
if any((course / name).exists() for name in ("solutions", "notebooks", "README.md", "submissions")):
    leaks.append("sees the course folder")
for folder in ("/tmp", "/dev/shm", os.getcwd()):
    if os.statvfs(folder).f_blocks * os.statvfs(folder).f_frsize > 2**31:
        leaks.append(f"{folder} has no size limit")
if os.path.exists(SUBMISSIONS):
    leaks.append("sees the submissions")
raise RuntimeError("SANDBOX " + ("LEAKS: " + ", ".join(leaks) if leaks else "HOLDS"))
"""


@pytest.mark.skipif(WHY_NOT is not None, reason=f"--sandbox unavailable: {WHY_NOT}")
def test_sandbox_grades_honest_work_and_holds(tmp_path):
    subs = tmp_path / "submissions"
    subs.mkdir()
    nbformat.write(nbformat.read(repo_root() / "solutions" / "01_loading.ipynb", as_version=4),
                   subs / "01_solution.ipynb")
    nb = nbformat.read(repo_root() / "exercises" / "01_loading.ipynb", as_version=4)
    nb.cells.insert(2, new_code_cell(f"SUBMISSIONS = {str(subs)!r}\n" + PROBE))
    nbformat.write(nb, subs / "01_probe.ipynb")
    report = tmp_path / "report.csv"
    proc = subprocess.run([sys.executable, "-m", "helpers", "grade", str(subs), "--sandbox", "--jobs", "2",
                           "--report", str(report)], capture_output=True, text=True, timeout=900, cwd=repo_root(),
                          env={**os.environ, "COURSE_TEST_SECRET": "secret-token"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(open(report)))
    solution = {r["question"]: r["status"] for r in rows if r["notebook"].endswith("01_solution.ipynb")}
    assert solution == dict.fromkeys(["q1", "q2", "q3", "q4"], "correct"), rows
    probe = [r for r in rows if r["notebook"].endswith("01_probe.ipynb")]
    assert all(r["status"] == "not_attempted" for r in probe)
    assert "SANDBOX HOLDS" in probe[0]["message"], probe[0]["message"]


def test_sandbox_refused_with_a_reason_when_unavailable(tmp_path, monkeypatch):
    import grading
    import grading.sandbox
    from helpers.__main__ import main

    monkeypatch.setattr(grading.sandbox, "available", lambda: "bubblewrap is not installed (apt-get install bubblewrap)")
    assert main(["grade", str(tmp_path), "--sandbox"]) == 2
