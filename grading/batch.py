"""Grade many notebooks: ``grade(paths=..., ...)``, the pipeline behind ``python -m helpers grade``.

In order (each step a function below):

1. :func:`plan` - find the notebooks and tell which lesson each one is (before any of them runs);
2. :func:`run_all` - stage 1 for each notebook in its own worker (:mod:`grading.worker`), ``jobs``
   at a time; the worker's result is read from a line that starts with a random token only this
   process and the worker know. If a worker finds that course files changed, the notebooks not
   yet started are not graded (their rows say why);
3. :func:`check_store` - the saved answers are still those the workers copied (SHA-256);
4. :func:`judge_all` - one judging process for the whole batch (:mod:`grading.judge`), started
   after every notebook's processes have ended, with an empty bytecode cache; a judge stuck on one
   notebook is stopped and a new one goes on with the rest;
5. rows scored by :func:`grading.report.score`; with ``answers=FOLDER`` the answers and a
   ``manifest.json`` are kept there, and :func:`regrade` judges them again later (after a check
   was fixed) without running any notebook.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .integrity import watched_roots
from .limits import MEMORY_BYTES
from .report import row

# The variables a notebook's kernel gets (the rest of the instructor's environment, tokens and keys
# included, is not passed on), plus a private home and Jupyter folders (:func:`stage1_env`).
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS",
            "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES", "COURSE_MODEL", "SYSTEMROOT")
JUDGE_SECONDS_PER_NOTEBOOK = 300


@dataclass
class Job:
    """One notebook of the batch."""

    path: Path
    lesson: str | None
    folder: Path                       # where its answers are kept
    events: list[str] = field(default_factory=list)
    error: str | None = None           # set when it cannot be judged
    digests: dict = field(default_factory=dict)


def find_notebooks(paths) -> list[Path]:
    """Every ``.ipynb`` under ``paths`` (files or folders), sorted; checkpoints left out."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(x for x in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in x.parts)
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return found


def lesson_of(path: Path) -> tuple[str | None, str | None]:
    """``(lessonNN, None)`` from the notebook metadata, else from a file name ``NN_topic...``; or ``(None, why)``."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(nb, dict) and isinstance(nb.get("cells"), list)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the submission's problem
        return None, f"not a readable notebook ({type(e).__name__}: {e})"
    lesson = (nb.get("metadata") or {}).get("course", {}).get("lesson") if isinstance(nb.get("metadata"), dict) else None
    if isinstance(lesson, str) and re.fullmatch(r"lesson\d\d", lesson):
        return lesson, None
    m = re.match(r"(\d\d)_", path.name)
    if m:
        return f"lesson{m.group(1)}", None
    return None, "cannot tell which lesson this is: keep the file name NN_topic.ipynb or the notebook's course metadata"


def plan(paths, store: Path) -> list[Job]:
    jobs = []
    for i, path in enumerate(find_notebooks(paths)):
        lesson, why = lesson_of(path)
        jobs.append(Job(path, lesson, store / f"{i:04d}", error=why))
    return jobs


def stage1_env(home: str) -> dict:
    """The kernel's environment: :data:`KEPT_ENV` and a private home, Jupyter and matplotlib folders."""
    from helpers.models import models_dir

    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.update(HOME=home, IPYTHONDIR=f"{home}/.ipython", JUPYTER_CONFIG_DIR=f"{home}/.jupyter",
               JUPYTER_DATA_DIR=f"{home}/.local/share/jupyter", JUPYTER_RUNTIME_DIR=f"{home}/.runtime",
               MPLCONFIGDIR=f"{home}/.matplotlib", PYTHONDONTWRITEBYTECODE="1", COURSE_PROGRESS_FILE="",
               COURSE_MODELS_DIR=str(models_dir()), HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    env.setdefault("PATH", os.defpath)
    return env


def worker_spec(job: Job, timeout: float, max_output_mb: float, sandbox: bool, watched: list[str]) -> dict:
    """What :mod:`grading.worker` needs; ``@TMP@`` stands for the worker's own temporary folder."""
    n_cells = _count_code_cells(job.path)
    if sandbox:
        from .sandbox import INSIDE, command
        inside = INSIDE
        env = stage1_env(INSIDE["workdir"])
    else:
        inside = {"notebook": "@TMP@/submission.ipynb", "workdir": "@TMP@/work", "answers": "@TMP@/answers"}
        env = stage1_env("@TMP@/work")
    run_spec = {**inside, "lesson": job.lesson, "timeout": timeout, "max_output_mb": max_output_mb}
    argv = [sys.executable, "-P", "-m", "grading.run", json.dumps(run_spec)]  # -P: not the working folder
    if sandbox:
        argv = command(argv, "@TMP@", env)
    return {"notebook": str(job.path), "argv": argv, "env": env, "cwd": inside["workdir"] if not sandbox else "@TMP@",
            "overall": timeout * (n_cells + 3) + 120, "store": str(job.folder), "watched": watched,
            "limits": True, "memory_bytes": MEMORY_BYTES}


def _count_code_cells(path: Path) -> int:
    try:
        return sum(c.get("cell_type") == "code" for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
    except Exception:  # noqa: BLE001 - the plan already said it is readable
        return 1


def _empty_folder(parent: Path, name: str) -> Path:
    """A new empty folder, made just before the process that uses it starts."""
    return Path(tempfile.mkdtemp(prefix=name, dir=parent))


def run_worker(spec: dict, scratch: Path) -> dict:
    """Run one worker; its result, read from the line that starts with the token."""
    token = secrets.token_hex(16)
    argv = [sys.executable, "-P", "-B", "-X", f"pycache_prefix={_empty_folder(scratch, 'pyc-')}",
            "-m", "grading.worker"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        # the worker enforces the notebook's own time limits; this is the backstop for the worker itself
        out, err = proc.communicate(token + "\n" + json.dumps(spec) + "\n", timeout=spec["overall"] + 600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"events": ["the grading worker for this notebook hung and was stopped"], "failed": True}
    for line in reversed(out.splitlines()):
        if line.startswith(token):
            return json.loads(line[len(token):])
    return {"events": [f"the grading worker failed: {err.strip()[-300:]}"], "failed": True}


def run_all(jobs: list[Job], timeout: float, parallel: int, max_output_mb: float, sandbox: bool,
            scratch: Path) -> None:
    """Stage 1 for every job that can run; fills in events, digests and errors."""
    watched = [str(r) for r in watched_roots()]
    stop = threading.Event()

    def one(job: Job) -> None:
        if job.error:
            return
        if stop.is_set():
            job.error = "not graded: the course's files changed while an earlier notebook ran (see its row)"
            return
        result = run_worker(worker_spec(job, timeout, max_output_mb, sandbox, watched), scratch)
        job.events = [str(e) for e in result.get("events", [])]
        job.digests = result.get("digests") or {}
        if result.get("stop"):
            stop.set()
            job.error = ("files the checks load changed while this notebook ran, so it was not graded (and grading "
                         f"stopped): {', '.join(map(str, result['stop']))}. Restore them (reinstall), then grade the "
                         "rest with --sandbox")
        elif result.get("failed"):
            job.error = f"a problem with the grader, not the answers: {'; '.join(job.events)}"
            job.events = []

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(one, jobs))


def check_store(jobs: list[Job]) -> None:
    """Refuse answers that changed (or appeared) after their worker copied them."""
    for job in jobs:
        if job.error:
            continue
        found = {str(p.relative_to(job.folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in job.folder.rglob("*") if p.is_file() and not p.is_symlink()} if job.folder.exists() else {}
        if found != job.digests:
            job.error = "its saved answers were changed after the notebook ran, so it was not graded"


def judge_all(jobs: list[Job], scratch: Path) -> dict[int, list[dict]]:
    """Judge every job in one process (another one after a judge that hangs); ``{index: rows}``."""
    todo = [(i, j) for i, j in enumerate(jobs) if j.lesson]
    results: dict[int, list[dict]] = {}
    while todo:
        judge = subprocess.Popen(
            [sys.executable, "-I", "-B", "-X", f"pycache_prefix={_empty_folder(scratch, 'pyc-')}", "-m",
             "grading.judge"], cwd=_empty_folder(scratch, "judge-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in judge.stdout] + [lines.put(None)], daemon=True).start()
        err: list[str] = []
        threading.Thread(target=lambda: err.extend(judge.stderr), daemon=True).start()
        for i, job in todo:
            judge.stdin.write(json.dumps({"lesson": job.lesson, "folder": str(job.folder), "error": job.error}) + "\n")
        judge.stdin.close()
        done = 0
        for k, (i, job) in enumerate(todo):
            # the first notebook also pays for starting Python and loading the references
            try:
                line = lines.get(timeout=JUDGE_SECONDS_PER_NOTEBOOK * (2 if k == 0 else 1))
            except queue.Empty:
                line = "timeout"
            if line is None or line == "timeout":
                why = ("it took over %d s" % JUDGE_SECONDS_PER_NOTEBOOK if line == "timeout"
                       else "".join(err).strip()[-300:])
                results[i] = [{"question": "*", "status": "error", "points": 1,
                               "message": f"checking the answers failed (a problem with the grader, not the answers): {why}"}]
                done = k + 1
                break
            results[i] = json.loads(line)
            done = k + 1
        os.killpg(judge.pid, signal.SIGKILL)
        judge.wait()
        todo = todo[done:]
    return results


def rows_of(jobs: list[Job], judged: dict[int, list[dict]]) -> list[dict]:
    """The report rows, every string as the submission left it (the report escapes them)."""
    rows = []
    for i, job in enumerate(jobs):
        name = str(job.path)
        if i not in judged:
            rows.append(row(name, "*", "error", job.error or "not graded"))
            continue
        note = "; ".join(job.events)
        for r in judged[i]:
            message = r["message"]
            if note and r["status"] != "correct":
                message = (message + " | " if message else "") + note
            rows.append(row(name, r["question"], r["status"], message, int(r.get("points", 1))))
    return rows


def grade(*, paths, timeout: float = 120, jobs: int = 1, max_output_mb: float = 1.0, sandbox: bool = False,
          answers: str | None = None) -> list[dict]:
    """Grade every notebook under ``paths``; returns all report rows (:data:`grading.report.FIELDS`).

    ``timeout``: seconds per cell; ``jobs``: notebooks run at once; ``max_output_mb``: output kept
    per notebook; ``sandbox``: run each notebook under bubblewrap (:mod:`grading.sandbox`);
    ``answers``: a folder to keep the answers in, for :func:`regrade`.
    """
    with tempfile.TemporaryDirectory(prefix="grade-batch-") as scratch:
        scratch = Path(scratch)
        store = Path(answers) if answers else scratch / "answers"
        store.mkdir(parents=True, exist_ok=True)
        batch = plan(paths, store)
        run_all(batch, timeout, jobs, max_output_mb, sandbox, scratch)
        check_store(batch)
        judged = judge_all(batch, scratch)
        if answers:
            manifest = [{"notebook": str(j.path), "lesson": j.lesson, "folder": j.folder.name, "events": j.events,
                         "error": j.error, "digests": j.digests} for j in batch]
            (store / "manifest.json").write_text(json.dumps(manifest, indent=1))
        return rows_of(batch, judged)


def regrade(answers: str) -> list[dict]:
    """Judge the answers kept by ``grade(answers=...)`` again (after a check was fixed); no notebook runs."""
    store = Path(answers)
    try:
        manifest = json.loads((store / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"{store} holds no answers kept by grade --answers ({type(e).__name__})") from None
    batch = [Job(Path(m["notebook"]), m["lesson"], store / m["folder"], m["events"], m["error"], m["digests"])
             for m in manifest]
    check_store(batch)
    with tempfile.TemporaryDirectory(prefix="grade-batch-") as scratch:
        return rows_of(batch, judge_all(batch, Path(scratch)))
