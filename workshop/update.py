"""Course updates that reach learners who already started, and never overwrite their work.

The rules are nbgitpuller's (the tool TLJH and Z2JH instructors use), applied to a plain copy of
the course instead of a git clone:

* a file that is new in the course **appears** in the learner's copy;
* a file the learner **never changed** (its content is still what the course gave them) **gets the
  new content**;
* a file the learner **changed is kept as it is**, and the new version is put **beside it**:
  ``01_loading.ipynb`` stays, ``01_loading.updated-20261203-101500.ipynb`` appears (once per new
  version; nbgitpuller would merge the two with ``git merge -Xours``, which can mix a learner's
  notebook JSON with the correction, so here nothing is merged);
* a file the learner deleted comes back (nbgitpuller does the same: delete a notebook to get a
  fresh copy), and nothing is ever deleted from the copy.

What the course gave is remembered in ``~/course/.course-sync.json`` (a SHA-256 per file). A copy
made before that file existed has no record: there, a file that differs from the new version is
treated as changed (kept, new version beside), never overwritten.

Two ways in, both run the merge **as the learner** (root never writes in a learner's home):

* the hub's spawner merges at every start of a learner's server (``workshop/spawner.py``), so a
  correction reaches everyone at their next start;
* the instructor pushes it now, to every learner, as root::

      sudo build/hub-env/bin/python -m workshop.update                  # all of /home
      sudo build/hub-env/bin/python -m workshop.update --homes /srv/homes --source /srv/course

  and on Zero to JupyterHub the image's postStart hook runs ``update.py merge`` at each pod start.

Standard library only: it runs with any Python 3.8+ the learner can start.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECORD = ".course-sync.json"
FOLDERS = ("notebooks", "exercises")
SKIPPED = {".ipynb_checkpoints", "__pycache__"}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def course_files(source: Path, folders=FOLDERS) -> list[str]:
    """The course's files under ``folders`` of ``source``, as relative paths (no hidden files)."""
    found = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(source / folder):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED and not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    found.append(str((Path(dirpath) / name).relative_to(source)))
    return found


def _place(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically (a reader never sees half a notebook)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
            shutil.copyfileobj(f, out)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def _beside(dest: Path, stamp: str) -> Path:
    """A free name beside ``dest`` for the new version: ``<stem>.updated-<stamp><suffix>``."""
    for n in range(1000):
        candidate = dest.with_name(f"{dest.stem}.updated-{stamp}{'-' + str(n) if n else ''}{dest.suffix}")
        if not os.path.lexists(candidate):
            return candidate
    raise RuntimeError(f"no free name beside {dest}")


def merge(source: str | Path, copy: str | Path, folders=FOLDERS, now: float | None = None) -> list[tuple[str, str]]:
    """Bring ``copy`` (a learner's ``~/course``) up to date with ``source`` (the course) by the rules
    above; returns ``[(relative path, what happened)]`` for every file that changed."""
    source, copy = Path(source), Path(copy)
    copy.mkdir(exist_ok=True)
    record_path = copy / RECORD
    try:
        record = json.loads(record_path.read_text())
        given, offered = dict(record["given"]), {k: list(v) for k, v in record["offered"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        given, offered = {}, {}
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    done = []
    for rel in course_files(source, folders):
        new, dest = _digest(source / rel), copy / rel
        if not os.path.lexists(dest):
            _place(source / rel, dest)
            done.append((rel, "restored (it had been deleted)" if rel in given else "added"))
            given[rel] = new
            continue
        if dest.is_symlink() or not dest.is_file():
            done.append((rel, "kept: not a plain file in the copy; the new version was not placed"))
            continue
        mine = _digest(dest)
        if mine == new:
            given[rel] = new
        elif given.get(rel) == mine:  # untouched since the course gave it
            _place(source / rel, dest)
            given[rel] = new
            done.append((rel, "updated"))
        elif new not in offered.get(rel, []):  # changed by the learner: theirs stays
            beside = _beside(dest, stamp)
            _place(source / rel, beside)
            offered.setdefault(rel, []).append(new)
            done.append((rel, f"kept (changed by you); the new version is beside it: {beside.name}"))
    fd, tmp = tempfile.mkstemp(dir=copy, prefix=f".{RECORD}.")
    with os.fdopen(fd, "w") as f:
        json.dump({"given": given, "offered": offered}, f, indent=1, sort_keys=True)
    os.replace(tmp, record_path)
    return done


def _reachable(path: str) -> bool:
    real = Path(os.path.realpath(path))
    return all(p.stat().st_mode & 0o001 for p in [real, *real.parents])


def learner_python() -> str:
    """A Python every user can start: this one if it is reachable, else the system's."""
    return sys.executable if _reachable(sys.executable) else "/usr/bin/python3"


def become(user: str):
    """A preexec function that drops root for ``user`` (its groups, gid, uid)."""
    pw = pwd.getpwnam(user)

    def preexec():
        os.initgroups(user, pw.pw_gid)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return preexec


def merge_as(user: str, source: str | Path, folders=FOLDERS, python: str | None = None) -> subprocess.CompletedProcess:
    """Run :func:`merge` as ``user`` into ``~user/course`` (from root); its output lists the changes."""
    pw = pwd.getpwnam(user)
    return subprocess.run([python or learner_python(), str(Path(__file__).resolve()), "merge", str(source),
                           str(Path(pw.pw_dir) / "course"), "--folders", *folders],
                          capture_output=True, text=True, preexec_fn=become(user), cwd="/",
                          env={"HOME": pw.pw_dir, "USER": user, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})


def learners(homes: Path, prefix: str = "jupyter-") -> list[str]:
    """The unix users ``<prefix>*`` whose home is in ``homes`` and holds a copy of the course."""
    return sorted(pw.pw_name for pw in pwd.getpwall()
                  if pw.pw_name.startswith(prefix) and Path(pw.pw_dir).parent == homes
                  and (Path(pw.pw_dir) / "course").is_dir())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop.update", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("merge", help="merge SOURCE's course folders into COPY (run as the learner)")
    one.add_argument("source")
    one.add_argument("copy")
    one.add_argument("--folders", nargs="+", default=list(FOLDERS))
    parser.add_argument("--homes", default=os.environ.get("COURSE_HUB_HOMES") or "/home",
                        help="where learners' homes are (default: $COURSE_HUB_HOMES or /home)")
    parser.add_argument("--source", default=os.environ.get("COURSE_HUB_CONTENT") or str(Path(__file__).resolve().parent.parent),
                        help="the course to take the new versions from (default: $COURSE_HUB_CONTENT or this checkout)")
    parser.add_argument("--user", nargs="+", help="only these learners (unix names, jupyter-...)")
    parser.add_argument("--folders", nargs="+", default=list(FOLDERS), dest="all_folders")
    args = parser.parse_args(argv)
    if args.command == "merge":
        for rel, what in merge(args.source, args.copy, args.folders):
            print(f"{rel}: {what}")
        return 0
    if os.geteuid() != 0:
        parser.error("run as root: it merges into each learner's home as that learner")
    names = args.user or learners(Path(args.homes).resolve())
    failed = 0
    for name in names:
        proc = merge_as(name, args.source, args.all_folders)
        lines = proc.stdout.strip().splitlines() or ["up to date"]
        if proc.returncode != 0:
            failed += 1
            lines = [f"FAILED: {proc.stderr.strip()[-300:]}"]
        for line in lines:
            print(f"{name}: {line}")
    print(f"{len(names)} learner(s) from {args.source}; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
