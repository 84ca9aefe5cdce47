"""Grade submitted exercise notebooks: ``python -m helpers grade PATH ...`` (the instructor's tool).

Answers and verdicts are kept apart. For each notebook, in its own worker process
(:mod:`grading.batch`, :mod:`grading.notebook`):

1. :mod:`grading.run` runs its cells in a fresh kernel, in a temporary working folder, with a
   per-cell timeout and an output cap; then :mod:`grading.extract`, in that kernel, saves each
   question's answers as plain data (:mod:`helpers.answers`: literals, safetensors,
   ``save_pretrained`` folders; never pickle). With ``--sandbox`` this stage runs under
   bubblewrap (:mod:`grading.sandbox`). If the kernel dies, the cells before the fatal one run again.
2. Every process the notebook left running is killed (:mod:`grading.processes`), and grading
   stops if the course's code, Python or models changed on disk (:mod:`grading.integrity`).
3. :mod:`grading.verify` judges the saved data in a clean process (``python -I -B``, an empty
   working folder) that computes every reference itself. The notebook's code can change the
   data it hands over, never the checks or the verdict: forging the data of a right answer
   means computing the right answer.

The report (:mod:`grading.report`) has one row per notebook and question: ``notebook``,
``question``, ``status`` (a key of ``helpers.checking.OUTCOMES``: ``correct``, ``incorrect``,
``not_attempted``, ``skipped``, ``check_failed``, ``error``), ``message``, ``points``,
``max_points``. ``skipped`` and ``check_failed`` (a check that broke, not a wrong answer) do not
count toward ``max_points``.

Threat model (README, "Threat model"): without ``--sandbox``, learner code runs with your
permissions; the grader stops in-kernel forgery (patched modules, shadowed packages, input
transformers, planted files, leftover processes, edited course files) but not an attacker who
uses OS-level access (ptrace, other processes' files). Grade untrusted work with ``--sandbox``.
"""

from .batch import grade
from .report import format_table, write_report

__all__ = ["grade", "format_table", "write_report", "main"]


def main(args) -> int:
    """The ``grade`` command (arguments parsed by ``helpers.__main__``). Returns the exit code."""
    import os
    import sys

    if args.report and not args.report.endswith((".json", ".csv")):
        print("error: --report must end in .json or .csv", file=sys.stderr)
        return 2
    if args.sandbox:
        from .sandbox import available
        why_not = available()
        if why_not:
            print(f"error: --sandbox is not available here: {why_not}", file=sys.stderr)
            return 2
    elif os.geteuid() == 0:
        print("note: grading as root without --sandbox: learner code runs as root. Use --sandbox for work "
              "you do not trust (README, Threat model).", file=sys.stderr)
    try:
        rows = grade(args.paths, timeout=args.timeout, jobs=args.jobs, max_output_mb=args.max_output,
                     sandbox=args.sandbox)
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
