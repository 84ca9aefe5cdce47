"""Graded mode for a course run: learners cannot read the solutions, and ``q1.solution()`` says so.

``COURSE_HUB_GRADED=1 make hub`` (``workshop/jupyterhub_config.py``) calls :func:`hold` at start:
every folder that holds solutions or their history in the course checkout (:func:`held_folders`:
``solutions/``, ``.git``, ``tests/``, and any other folder named ``solutions`` in it, such as a copy
of the course under ``build/``) becomes root-owned, mode 0700. Learners import ``helpers`` from the
checkout but their copy in ``~/course`` never had ``solutions/``; their servers get
``COURSE_SOLUTIONS=held``, so ``q1.solution()`` prints that solutions are held back for this course
run instead of reading a file. Root, and so the instructor's grader (``python -m helpers grade``,
which grades with the checks and needs no solutions) and ``python -m helpers exercises build``,
still read them; ``COURSE_SOLUTIONS_DIR`` points ``q.solution()`` at solutions kept elsewhere.

The folders stay closed after the hub stops (a restart must not open them); after the course run,
``python -m workshop.graded --open`` gives them back mode 0755. The hub test closes and reopens
them around its run (``tests/test_workshop.py``).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

HELD = ("solutions", ".git", "tests")  # relative to the checkout: the answers, their history, tests that hold right answers
PRUNED = {".git", ".venv", "node_modules", "models", "__pycache__", ".hypothesis", ".pytest_cache", "site-packages"}


def held_folders(course: str | Path) -> list[Path]:
    """The folders of ``course`` that graded mode closes: :data:`HELD`, and every other folder named
    ``solutions`` in the checkout (virtual environments, models and caches are not searched)."""
    course = Path(course)
    found = [course / name for name in HELD if (course / name).is_dir() and not (course / name).is_symlink()]
    for dirpath, dirnames, _ in os.walk(course):
        here = Path(dirpath)
        if (here / "pyvenv.cfg").exists():
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if d not in PRUNED and not (here / d).is_symlink()]
        for d in list(dirnames):
            if d == "solutions" and here / d not in found:
                found.append(here / d)
                dirnames.remove(d)  # closed as a whole
    return found


def readable_by_others(folder: Path) -> bool:
    """Whether a user other than the owner could list or enter ``folder`` (by its mode)."""
    mode = folder.stat().st_mode
    return folder.stat().st_uid != 0 or bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def hold(course: str | Path) -> list[Path]:
    """Close :func:`held_folders` of ``course`` to everyone but root (root-owned, 0700); returns them."""
    folders = held_folders(course)
    for folder in folders:
        os.chown(folder, 0, 0, follow_symlinks=False)
        os.chmod(folder, 0o700, follow_symlinks=False)
    still_open = [f for f in folders if readable_by_others(f)]
    if still_open:
        raise RuntimeError(f"graded mode: could not close {', '.join(map(str, still_open))}")
    return folders


def release(course: str | Path) -> list[Path]:
    """After the course run: open the held folders again (0755, as a checkout has them)."""
    folders = held_folders(course)
    for folder in folders:
        os.chmod(folder, 0o755, follow_symlinks=False)
    return folders


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop.graded", description=__doc__.split("\n")[0])
    parser.add_argument("course", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--hold", action="store_true", help="close the solutions to everyone but root (the hub does this)")
    what.add_argument("--open", action="store_true", help="open them again, after the course run")
    args = parser.parse_args(argv)
    if (args.hold or args.open) and os.geteuid() != 0:
        parser.error("run as root")
    folders = hold(args.course) if args.hold else release(args.course) if args.open else held_folders(args.course)
    for folder in folders:
        print(f"{'closed' if not readable_by_others(folder) else 'OPEN to learners'}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
