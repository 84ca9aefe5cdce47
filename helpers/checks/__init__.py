"""One module per lesson: ``helpers.checks.lessonNN`` defines ``q1``, ``q2``, ... and ``QUESTIONS``.

Shared reference objects (the course model and tokenizer, loaded once per
process in float32 on the CPU) are in :mod:`helpers.checks.common`.
"""
