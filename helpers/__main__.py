"""Command line: ``course <command>`` (installed by pip), or ``python -m helpers <command>``.

  setup [--force]                  check the Python version, build/verify the course models (make setup)
  lab [--port N] [--no-browser]    JupyterLab on notebooks/ (make lab)
  test [--quick] [PYTEST ARGS]     the test suite as make test / make test-quick run it (needs .[dev])
  prepare [NAME ...] [--force]     build/verify the offline course models
  env                              print the environment report
  resolve [NAME]                   print what a model name resolves to
  exercises build [--check]        write exercises/ from solutions/
  exercises reset NN [--to PATH]   a fresh copy of an exercise for a learner
  colab build [--check]            write the Colab cell and "Open in Colab" links (pyproject Repository)
  grade PATH ... [--timeout S] [--jobs N] [--report FILE.json|FILE.csv] [--sandbox] [--answers DIR]
  grade --regrade DIR [--report FILE]   judge kept answers again (after a check was fixed)
  progress PATH ... [--csv FILE]   learners x questions table of recorded checks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from . import python_version
    python_version.check()  # before anything that a too-old Python could not even import

    prog = "course" if Path(sys.argv[0]).stem == "course" else "python -m helpers"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup", help="check the Python version, build the course models (make setup)")
    p.add_argument("--force", action="store_true", help="rebuild the models even if present and verified")
    p = sub.add_parser("lab", help="JupyterLab on the notebooks (make lab)")
    p.add_argument("--port", type=int, help="port (default: JupyterLab's, 8888 or the next free one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    p = sub.add_parser("test", help="the test suite, as make test runs it (needs pip install -e '.[dev]')")
    p.add_argument("--quick", action="store_true", help="unit and check tests only (make test-quick)")

    p = sub.add_parser("prepare", help="build the offline course models (idempotent)")
    p.add_argument("names", nargs="*", help="course model names (default: all)")
    p.add_argument("--force", action="store_true", help="rebuild even if present and verified")

    sub.add_parser("env", help="print the environment report")

    p = sub.add_parser("resolve", help="print what a model name resolves to")
    p.add_argument("name", nargs="?")

    p = sub.add_parser("exercises", help="build or reset exercise notebooks")
    ex = p.add_subparsers(dest="action", required=True)
    b = ex.add_parser("build", help="write exercises/ from solutions/")
    b.add_argument("--check", action="store_true", help="fail if exercises/ is out of date")
    r = ex.add_parser("reset", help="copy a fresh exercise notebook for a learner")
    r.add_argument("lesson", help="lesson number, e.g. 01")
    r.add_argument("--to", help="destination (default: exercises/NN_topic-fresh-N.ipynb)")

    p = sub.add_parser("colab", help="the Colab cell and 'Open in Colab' links, from pyproject's Repository URL")
    b = p.add_subparsers(dest="action", required=True).add_parser(
        "build", help="write them into notebooks/, solutions/, exercises/ and the README")
    b.add_argument("--check", action="store_true", help="fail if they are out of date")

    from grading.cli import add_arguments as grade_arguments
    grade_arguments(sub.add_parser("grade", help="grade submitted exercise notebooks"))

    p = sub.add_parser("progress", help="summarize the checks learners ran (folders of homes)")
    p.add_argument("paths", nargs="+", help="a folder of learners' homes, a home, or a progress file")
    p.add_argument("--csv", help="also write the rows to FILE.csv")

    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    from .models import CourseSetupError

    try:
        if args.command in ("setup", "lab", "test"):
            from . import commands
            if args.command == "setup":
                return commands.setup(force=args.force)
            if args.command == "lab":
                return commands.lab(port=args.port, no_browser=args.no_browser)
            return commands.test(quick=args.quick, pytest_args=extra)
        if args.command == "prepare":
            from .provision import prepare
            prepare(args.names or None, force=args.force)
        elif args.command == "env":
            from .diagnostics import environment_report
            environment_report()
        elif args.command == "resolve":
            from .models import resolve_model
            print(resolve_model(args.name))
        elif args.command == "exercises":
            from . import exercises
            if args.action == "build":
                return exercises.build_all(check=args.check)
            print(exercises.reset(args.lesson, args.to))
        elif args.command == "colab":
            from . import colab, exercises
            return colab.build_all(check=args.check) or exercises.build_all(check=args.check)
        elif args.command == "grade":
            from grading.cli import main as grade_main
            return grade_main(args)
        elif args.command == "progress":
            from .progress import main as progress_main
            return progress_main(args)
    except CourseSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
