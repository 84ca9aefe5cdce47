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
* :mod:`grading.report` scores the rows (one :func:`~grading.report.score`) and writes them;
* :mod:`grading.cli` is the ``grade`` command: its options take their defaults from
  :func:`grading.batch.grade`'s keyword-only arguments.

What each mode guarantees, from the tests: docs/grading.md.
"""

from __future__ import annotations

__all__ = ["grade", "regrade", "format_table", "write_report"]


def __getattr__(name):  # the worker imports this package without torch: load the pipeline on use
    if name in ("grade", "regrade"):
        from . import batch
        return getattr(batch, name)
    if name in ("format_table", "write_report"):
        from . import report
        return getattr(report, name)
    raise AttributeError(name)
