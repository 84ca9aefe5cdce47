"""Grade submitted exercise notebooks: ``python -m helpers grade PATH ...`` (the instructor's tool).

Answers and verdicts are kept apart; the steps are listed once, in :mod:`grading.batch`:

* :mod:`grading.worker` runs one notebook (:mod:`grading.run`, stage 1: its cells in a fresh
  kernel, then :mod:`grading.extract` saves each question's answers as plain data), in a cgroup
  with memory and process limits where the host allows (:mod:`grading.limits`), under bubblewrap
  with ``--sandbox`` (:mod:`grading.sandbox`); then kills all it left running
  (:mod:`grading.processes`) and looks for changed course files (:mod:`grading.integrity`);
* :mod:`grading.judge` judges every notebook's saved data in one clean process that computes every
  reference itself: the notebook's code can change the data it hands over, never the checks or
  the verdict;
* :mod:`grading.report` scores the rows (one :func:`~grading.report.score`) and writes them.

What each mode guarantees, from the tests: docs/grading.md.
"""

from __future__ import annotations

import os
import sys

__all__ = ["grade", "regrade", "format_table", "write_report", "main"]


def __getattr__(name):  # the worker imports this package without torch: load the pipeline on use
    if name in ("grade", "regrade"):
        from . import batch
        return getattr(batch, name)
    if name in ("format_table", "write_report"):
        from . import report
        return getattr(report, name)
    raise AttributeError(name)


def main(args) -> int:
    """The ``grade`` command (arguments parsed by ``helpers.__main__``).

    Exit codes: 0 graded (whatever the grades); 2 a usage error (nothing graded).
    """
    from .batch import grade, regrade
    from .report import format_table, problems, write_report

    if args.report and not args.report.endswith((".json", ".csv")):
        print("error: --report must end in .json or .csv", file=sys.stderr)
        return 2
    if args.sandbox:
        from .sandbox import available
        why_not = available()
        if why_not:
            print(f"error: --sandbox is not available here: {why_not}", file=sys.stderr)
            return 2
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
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print("error: no notebooks found", file=sys.stderr)
        return 2
    print(format_table(rows))
    print("\n".join(problems(rows)))
    if args.report:
        write_report(rows, args.report)
        print(f"report written to {args.report}")
    return 0
