"""The ``grade`` command (``python -m helpers grade``): options, then :func:`grading.batch.grade`.

Its defaults are :func:`~grading.batch.grade`'s keyword-only defaults (one source of truth).
Exit codes: 0 when the notebooks were graded, whatever the grades; 2 for a usage error (bad
option, nothing to grade, ``--sandbox`` unavailable), with one ``error:`` line saying why.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``grade`` options, on ``parser``."""
    from .batch import grade

    d = grade.__kwdefaults__
    parser.add_argument("paths", nargs="*", help="notebooks or folders of notebooks")
    parser.add_argument("--timeout", type=float, default=d["timeout"], help=f"seconds per cell (default {d['timeout']:g})")
    parser.add_argument("--jobs", type=int, default=d["jobs"], help="notebooks graded in parallel")
    parser.add_argument("--report", help="write the report to FILE.json or FILE.csv")
    parser.add_argument("--max-output", type=float, default=d["max_output_mb"], help="MB of output kept per notebook")
    parser.add_argument("--sandbox", action="store_true", default=d["sandbox"],
                        help="run each notebook under bubblewrap: no network, nobody's uid, read-only system, "
                             "writes only to its own temporary folder (for work you do not trust)")
    parser.add_argument("--answers", default=d["answers"],
                        help="keep every notebook's saved answers in this folder (for --regrade)")
    parser.add_argument("--regrade", metavar="DIR", help="judge the answers kept in DIR by --answers again; "
                                                         "no notebook runs")
    parser.add_argument("--roster", help="CSV of learners: id, name, email, path (their notebook or folder)")
    parser.add_argument("--gradebook", help="write one row per roster learner, one column per exercise, to FILE.csv")
    parser.add_argument("--gradebook-format", default="plain", choices=("plain", "canvas", "moodle"),
                        help="plain (default), canvas or moodle: the LMS's CSV import columns (docs/grading.md)")


def usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from .batch import grade, regrade
    from .report import format_table, problems, write_report

    if not args.paths and not args.regrade:
        return usage_error("grade needs notebooks or folders (or --regrade DIR)")
    if args.report and not args.report.endswith((".json", ".csv")):
        return usage_error("--report must end in .json or .csv")
    if bool(args.gradebook) != bool(args.roster):
        return usage_error("--gradebook and --roster go together: the roster says whose notebook is whose")
    roster = None
    if args.roster:
        from .gradebook import RosterError, read_roster
        try:
            roster = read_roster(args.roster)
        except RosterError as e:
            return usage_error(str(e))
    if args.sandbox:
        from .sandbox import available
        why_not = available()
        if why_not:
            return usage_error(f"--sandbox is not available here: {why_not}")
    elif not args.regrade and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("note: grading as root without --sandbox: learner code runs as root. Use --sandbox for work "
              "you do not trust (docs/grading.md).", file=sys.stderr)
    try:
        if args.regrade:
            rows = regrade(args.regrade)
        else:
            rows = grade(paths=args.paths, timeout=args.timeout, jobs=args.jobs, max_output_mb=args.max_output,
                         sandbox=args.sandbox, answers=args.answers)
    except FileNotFoundError as e:
        return usage_error(str(e))
    if not rows:
        return usage_error("no notebooks found")
    print(format_table(rows))
    print("\n".join(problems(rows)))
    if args.report:
        write_report(rows, args.report)
        print(f"report written to {args.report}")
    if roster is not None:
        from . import gradebook
        book = gradebook.build(rows, roster)
        gradebook.write(book, args.gradebook, args.gradebook_format)
        print("\n".join(gradebook.summary(book)))
        print(f"gradebook ({args.gradebook_format}) written to {args.gradebook}")
    return 0
