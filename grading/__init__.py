"""Grade submitted exercise notebooks: ``python -m helpers grade PATH ...`` (the instructor's tool).

For each notebook, in its own process (:mod:`grading.batch`):

1. read it (the file is never written) and run every code cell top to bottom in a fresh
   kernel with nbclient, in a temporary working folder, with a per-cell timeout (a cell that
   runs too long is interrupted) and a cap on how much output is kept (:mod:`grading.notebook`);
2. then, in the same kernel, import a *fresh* copy of the checks and evaluate every question of
   the lesson on the learner's live variables (:mod:`grading.kernel`). The verdict never comes
   from saved outputs, printed text, or a ``check`` the learner redefined or deleted.

If the kernel dies (``os._exit``, a crash), the cells before the fatal one are run again in a
new kernel and graded; questions answered later count as not passed. A notebook that exceeds
its overall time limit is stopped and reported.

The report (:mod:`grading.report`) has one row per notebook and question: ``notebook``,
``question``, ``status`` (a key of ``helpers.checking.OUTCOMES``: ``correct``, ``incorrect``,
``not_attempted``, ``skipped``, ``check_failed``, ``error``), ``message``, ``points``,
``max_points``. ``skipped`` and ``check_failed`` (a check that broke, not a wrong answer) do not
count toward ``max_points``.

Threat model: honest mistakes and casual cheating (redefining ``q1.check``, printing "Correct",
deleting check cells). The verdict is computed inside the learner's kernel, after the learner's
code ran there, so code written to forge it can (README, "Exercises and grading"). Learner code
runs with your user's permissions, as in any notebook; grade untrusted work in a container.
"""

from .batch import grade
from .report import format_table, write_report

__all__ = ["grade", "format_table", "write_report", "main"]


def main(args) -> int:
    """The ``grade`` command (arguments parsed by ``helpers.__main__``). Returns the exit code."""
    import sys

    if args.report and not args.report.endswith((".json", ".csv")):
        print("error: --report must end in .json or .csv", file=sys.stderr)
        return 2
    try:
        rows = grade(args.paths, timeout=args.timeout, jobs=args.jobs, max_output_mb=args.max_output)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print("error: no notebooks found", file=sys.stderr)
        return 2
    print(format_table(rows))
    for r in rows:
        if r["status"] != "correct" and r["message"]:
            print(f"  {r['notebook']} {r['question']}: {r['status']}: {r['message']}")
    if args.report:
        write_report(rows, args.report)
        print(f"report written to {args.report}")
    return 0
