"""Run one notebook's stage 1 and collect its answers: ``python -m grading.worker`` (spec on stdin).

The process :mod:`grading.batch` starts for each notebook. It imports no torch and no course code
(the batch computes everything course-specific into the spec), and it is started with an empty
bytecode cache of its own, so nothing a submission planted can run in it. In order:

1. read the spec and a random token from standard input (never from the command line or the
   environment, which other processes can read), make this process a child subreaper and
   undumpable;
2. stage 1, :mod:`grading.run`: the notebook's cells in a fresh kernel, then the extraction cell,
   in a cgroup of its own with memory and process limits where the host allows one
   (:mod:`grading.limits`), under :mod:`grading.sandbox` with ``--sandbox``;
3. kill every process the submission left behind: its cgroup, then every descendant, zombies and
   their threads included (:mod:`grading.processes`);
4. look for changed course files (:mod:`grading.integrity`): a change stops the batch;
5. copy the answers (regular files only) into the batch's store with their SHA-256, so the batch
   can tell if anything touched them before the judge reads them.

The result goes to standard output as one line that starts with the token: a line a submission
wrote (it cannot know the token) is never taken for it. Nothing here judges an answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .integrity import changed_since
from .limits import Group, limit_files
from .processes import become_subreaper, become_undumpable, kill_descendants

MAX_ANSWER_FILES, MAX_ANSWER_BYTES = 2_000, 512 * 2**20  # an answers folder (a LoRA adapter is the largest)


def copy_answers(source: Path, dest: Path) -> tuple[dict[str, str], list[str]]:
    """Copy the regular files under ``source`` to ``dest``; ``({relative path: sha256}, events)``.

    Links, FIFOs, devices and sockets are left out (and said so): the judge never meets them.
    """
    digests, events, total = {}, [], 0
    dest.mkdir(parents=True, exist_ok=True)
    todo = [Path()]
    while todo:
        rel = todo.pop()
        try:
            entries = sorted(os.scandir(source / rel), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            name = str(rel / e.name)
            mode = e.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                (dest / name).mkdir(exist_ok=True)
                todo.append(rel / e.name)
            elif not stat.S_ISREG(mode):
                events.append(f"answers: {name} is not a regular file (left out)")
            elif len(digests) >= MAX_ANSWER_FILES or total + e.stat(follow_symlinks=False).st_size > MAX_ANSWER_BYTES:
                events.append(f"answers: over {MAX_ANSWER_FILES} files or {MAX_ANSWER_BYTES >> 20} MiB; the rest left out")
                return digests, events
            else:
                fd = os.open(source / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as f, open(dest / name, "wb") as out:
                    data = f.read(MAX_ANSWER_BYTES - total + 1)
                    out.write(data)
                total += len(data)
                digests[name] = hashlib.sha256(data).hexdigest()
    return digests, events


def run_stage1(spec: dict, tmp: Path) -> list[str]:
    """Stage 1 in ``tmp`` (which holds ``submission.ipynb``); returns the events."""
    events: list[str] = []
    group = Group.create(spec["memory_bytes"]) if spec["limits"] else None
    if spec["limits"] and group is None:
        events.append("limits: no cgroup could be made here, so memory and process limits are not enforced")

    def preexec():
        limit_files()
        if group:
            group.join()

    try:
        proc = subprocess.run(spec["argv"], env=spec["env"], cwd=spec["cwd"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=spec["overall"],
                              preexec_fn=preexec)
        events += _events_from(proc.stdout)
        if proc.returncode != 0 and not events:
            events.append(f"running the notebook failed: {proc.stderr.strip()[-300:]}")
    except subprocess.TimeoutExpired:
        events.append(f"running this notebook took over {spec['overall']:g} s and was stopped")
    left = group.kill() if group else 0
    left += kill_descendants()
    if left:
        events.append(f"{left} process(es) the notebook left running were killed")
    if group:
        if group.oom_killed():
            events.append(f"the notebook went past its memory limit ({group.describe()}) and was stopped")
        group.remove()
    return events


def _events_from(stdout: str) -> list[str]:
    """The events :mod:`grading.run` printed (informative only: a submission could have written them)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            events = json.loads(line)
        except ValueError:
            continue
        if isinstance(events, list):
            return [str(e)[:300] for e in events[:50]]
    return []


def work(spec: dict) -> dict:
    """Steps 2-5 for one notebook; returns ``{"events", "stop", "digests"}``."""
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        tmp = Path(tmp)
        for sub in ("work", "answers"):
            (tmp / sub).mkdir()
        shutil.copyfile(spec["notebook"], tmp / "submission.ipynb")  # the submitted file is never opened for writing
        spec = json.loads(json.dumps(spec).replace("@TMP@", str(tmp)))  # the batch's placeholders for this folder
        started = time.time()
        events = run_stage1(spec, tmp)
        changed = changed_since(started, [Path(r) for r in spec["watched"]])
        if changed:
            return {"events": events, "stop": changed, "digests": {}}
        digests, more = copy_answers(tmp / "answers", Path(spec["store"]))
        return {"events": events + more, "stop": [], "digests": digests}


if __name__ == "__main__":  # started by grading.batch
    token = sys.stdin.readline().strip()
    spec = json.loads(sys.stdin.readline())
    sys.stdin.close()
    become_subreaper()
    become_undumpable()
    try:
        result = work(spec)
    except Exception as e:  # noqa: BLE001 - reported as the grader's problem, with the cause
        result = {"events": [f"the grading worker failed: {type(e).__name__}: {e}"], "stop": [], "digests": {},
                  "failed": True}
    sys.stdout.write("\n" + token + json.dumps(result) + "\n")
