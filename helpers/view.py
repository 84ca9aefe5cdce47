"""What a learner sees of a question: ``q1.check()``, ``q1.hint()``, ``q1.solution()``, coloured results.

:class:`QuestionView` is the part of :class:`helpers.checking.Question` that talks to a person: it
runs the question's :meth:`~helpers.checking.Question.evaluate`, hands the result to the hooks in
:data:`ON_CHECK` (the progress file, :func:`helpers.progress.record`), then shows it (coloured HTML
in Jupyter, plain text elsewhere). The question itself only judges; it never displays or writes.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

from .outcomes import OUTCOMES, Outcome
from .progress import record


def _record_progress(question, result) -> None:
    record(question.notebook, question.name, result.status)


ON_CHECK = [_record_progress]  # called as hook(question, result) after each check()


def result_html(result) -> str:
    """A result as a coloured block (its status's colours in :data:`helpers.outcomes.OUTCOMES`)."""
    o = OUTCOMES.get(result.status, Outcome(result.status, "?", "#000", "#fff", True))
    msg = f": {html.escape(result.message)}" if result.message else ""
    return (f'<div style="color:{o.colour};background:{o.background};padding:6px 10px;'
            f'border-left:4px solid {o.colour}"><b>{html.escape(result.question)}: {o.label}</b>{msg}</div>')


def show(obj) -> None:
    """Display rich output in Jupyter, plain text in a terminal."""
    try:
        from IPython import get_ipython
        from IPython.display import display
        if get_ipython() is not None:
            display(obj)
            return
    except ImportError:
        pass
    print(obj)


class QuestionView:
    """``check``, ``hint`` and ``solution`` for a question that has ``evaluate``, ``name``, ``hints``, ``notebook``."""

    def check(self, namespace: dict | None = None) -> None:
        """Check your answer (the variables named in the question) and show the result.

        ``namespace``: where the variables are; by default the globals of the code that called
        ``check()`` (the notebook's variables).
        """
        if namespace is None:
            namespace = sys._getframe(1).f_globals
        result = self.evaluate(namespace)
        for hook in ON_CHECK:
            hook(self, result)
        show(result)

    def hint(self, n: int = 1) -> None:
        """Show hint number ``n`` (1 = gentlest)."""
        if not self.hints:
            print(f"{self.name}: no hints for this question.")
            return
        n = max(1, min(int(n), len(self.hints)))
        more = f" (more: {self.name}.hint({n + 1}))" if n < len(self.hints) else ""
        print(f"{self.name} hint {n}/{len(self.hints)}{more}:\n{self.hints[n - 1]}")

    def solution(self) -> None:
        """Show the reference solution, read from the solution notebook; in a graded course run
        (``COURSE_SOLUTIONS=held``, set by the workshop hub's graded mode) say it is held back."""
        import os
        if os.environ.get("COURSE_SOLUTIONS") == "held":
            print(f"{self.name}: solutions are held back for this course run (it is graded); "
                  "your instructor can show them once it is over.")
            return
        try:
            code = solution_source(self.notebook, self.name) if self.notebook else None
        except OSError:  # a solutions folder closed to this user
            code = None
        if code is None:
            print(f"{self.name}: the solution notebook is not available here.")
        else:
            print(f"{self.name} solution:\n{code}")


def solutions_dir() -> Path:
    """Where the solution notebooks are: ``$COURSE_SOLUTIONS_DIR`` if set (an instructor's copy kept
    outside the course), else ``<course>/solutions``."""
    import os
    if os.environ.get("COURSE_SOLUTIONS_DIR"):
        return Path(os.environ["COURSE_SOLUTIONS_DIR"]).expanduser()
    from .models import repo_root
    return repo_root() / "solutions"


def solution_source(notebook: str, question: str) -> str | None:
    """The code between ``# BEGIN SOLUTION <question>`` and ``# END SOLUTION`` (see :mod:`helpers.markers`)."""
    from .markers import regions

    path = solutions_dir() / notebook
    if not path.is_file():
        return None
    for cell in json.loads(path.read_text())["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for region in regions(src):
            if region.question == question:
                return region.body
    return None
