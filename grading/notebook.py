"""Grade one notebook: ``python -m grading.notebook SPEC_JSON`` prints its report rows as JSON.

The worker :mod:`grading.batch` starts for each notebook. In order:

1. copy the notebook into a new working folder (the submitted file is never opened for writing);
2. stage 1, :mod:`grading.run`: run its cells in a fresh kernel and save the answers as data,
   with a private home and Jupyter/IPython folders, no bytecode written, progress recording off,
   inside :mod:`grading.sandbox` with ``--sandbox``;
3. kill every process the submission left behind (:mod:`grading.processes`);
4. stop if the course's code, Python or models changed on disk (:mod:`grading.integrity`);
5. stage 2, :mod:`grading.verify`: judge the saved answers in a clean process that can import
   nothing from the working folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .processes import become_subreaper, kill_descendants
from .report import error_row

TAMPERED = "tampered"  # the event that stops a batch: the course's files changed while a notebook ran


def lesson_of(nb: dict, path: Path) -> str | None:
    """``lessonNN`` from the notebook metadata, else from a file name ``NN_topic...``."""
    lesson = nb.get("metadata", {}).get("course", {}).get("lesson")
    if isinstance(lesson, str) and re.fullmatch(r"lesson\d\d", lesson):
        return lesson
    m = re.match(r"(\d\d)_", path.name)
    return f"lesson{m.group(1)}" if m else None


def _stage1_env(work: Path) -> dict:
    """The kernel's environment: the instructor's, with a private home and no shared Jupyter state."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONUSERBASE"):
        env.pop(name, None)
    env.update(HOME=str(work), IPYTHONDIR=str(work / ".ipython"), JUPYTER_CONFIG_DIR=str(work / ".jupyter"),
               JUPYTER_DATA_DIR=str(work / ".local/share/jupyter"), JUPYTER_RUNTIME_DIR=str(work / ".runtime"),
               PYTHONDONTWRITEBYTECODE="1", COURSE_PROGRESS_FILE="",
               MPLCONFIGDIR=str(work / ".matplotlib"))
    from helpers.models import models_dir
    env.setdefault("COURSE_MODELS_DIR", str(models_dir()))
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _read_events(path: Path) -> list[str]:
    """The events stage 1 wrote (its own words, so only short strings are kept)."""
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 100_000:
            events = json.loads(path.read_text())
            if isinstance(events, list):
                return [str(e)[:300] for e in events[:50]]
    except (OSError, ValueError):
        pass
    return []


def grade_notebook(path: Path, timeout: float = 120, max_output_mb: float = 1.0, sandbox: bool = False) -> dict:
    """Grade one notebook in this process. Returns ``{"rows": [...], "events": [...]}``."""
    from .extract import lesson_questions

    path, name = Path(path), str(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(nb, dict) and isinstance(nb.get("cells"), list)
    except Exception as e:
        return {"rows": [error_row(name, "*", f"not a readable notebook ({type(e).__name__}: {e})")], "events": []}
    lesson = lesson_of(nb, path)
    try:
        questions = lesson_questions(lesson) if lesson else None
    except ModuleNotFoundError:
        questions = None
    if not questions:
        return {"rows": [error_row(name, "*", "cannot tell which lesson this is: keep the file name "
                                              "NN_topic.ipynb or the notebook's course metadata")], "events": []}
    n_cells = sum(c.get("cell_type") == "code" for c in nb["cells"])
    events: list[str] = []
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        work, judge = Path(tmp) / "work", Path(tmp) / "judge"
        work.mkdir()
        judge.mkdir()
        (work / "submission.ipynb").write_bytes(path.read_bytes())
        answers, events_file = work / ".answers", work / ".events.json"
        spec = {"notebook": str(work / "submission.ipynb"), "workdir": str(work), "answers": str(answers),
                "events": str(events_file), "lesson": lesson, "timeout": timeout, "max_output_mb": max_output_mb}
        argv = [sys.executable, "-P", "-m", "grading.run", json.dumps(spec)]  # -P: not the working folder
        if sandbox:
            from .sandbox import command
            argv = command(argv, work)
        started = time.time()
        overall = timeout * (n_cells + 3) + 120
        try:
            stage1 = subprocess.run(argv, env=_stage1_env(work), cwd=work, capture_output=True, text=True,
                                    timeout=overall)
            events += _read_events(events_file)
            if stage1.returncode != 0 and not events:
                events.append(f"running the notebook failed: {stage1.stderr.strip()[-300:]}")
        except subprocess.TimeoutExpired:
            events.append(f"running this notebook took over {overall:g} s and was stopped")
        left = kill_descendants()
        if left:
            events.append(f"{left} process(es) the notebook left running were killed")

        from .integrity import changed_since
        changed = changed_since(started)
        if changed:
            events.append(TAMPERED)
            msg = ("files the checks load changed while this notebook ran, so it was not graded (and grading "
                   f"stopped): {', '.join(changed)}. Restore them (reinstall), then grade the rest with --sandbox")
            return {"rows": [error_row(name, q.name, msg, q.points) for q in questions], "events": events}

        try:
            judged = subprocess.run([sys.executable, "-I", "-B", "-m", "grading.verify", lesson, str(answers)],
                                    cwd=judge, capture_output=True, text=True, timeout=max(600, 60 * len(questions)))
            rows = [{"notebook": name, **row} for row in json.loads(judged.stdout.strip().splitlines()[-1])]
        except (ValueError, IndexError, subprocess.TimeoutExpired) as e:
            detail = judged.stderr.strip()[-300:] if not isinstance(e, subprocess.TimeoutExpired) else "it timed out"
            msg = f"checking the answers failed (a problem with the grader, not the answers): {detail}"
            rows = [error_row(name, q.name, msg, q.points) for q in questions]
    note = "; ".join(events)
    for row in rows:
        if note and row["status"] != "correct":
            row["message"] = (row["message"] + " | " if row["message"] else "") + note
    return {"rows": rows, "events": events}


if __name__ == "__main__":  # the worker started by grading.batch
    become_subreaper()
    spec = json.loads(sys.argv[1])
    result = grade_notebook(Path(spec["notebook"]), spec["timeout"], spec["max_output_mb"], spec.get("sandbox", False))
    sys.stdout.write("\n" + json.dumps(result))
