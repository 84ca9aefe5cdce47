"""Small helpers for the course: one module per concern, each readable in one sitting.

* ``helpers.models``      - where the course models live, ``resolve_model``
* ``helpers.provision``   - ``prepare``: builds the course models offline (``make setup``)
* ``helpers.device``      - ``best_device()``, ``best_dtype()``, ``synchronize()``, the pretend small GPU
* ``helpers.speed``       - ``decode_speed()``: prefill and decode speed against the roofline
* ``helpers.memory``      - ``load_memory()`` in a fresh process, ``release_memory()``
* ``helpers.quantization`` - lesson 06's measuring tools for bitsandbytes models
* ``helpers.diagnostics`` - ``environment_report()``, ``describe(model)``
* ``helpers.errors``      - ``explain(exc)`` / ``explained()``: the cause and the fix of an error
* ``helpers.playground``  - the generation widget of lesson 02 (its logic is plain functions)
* ``helpers.finetune``    - lesson 06's tiny dataset and training loop
* ``helpers.checking``    - the ``q1.check() / hint() / solution()`` machinery and its outcomes
* ``helpers.markers``     - the ``# BEGIN SOLUTION qN`` markers
* ``helpers.checks``      - one module per lesson's questions, ``common`` the shared toolbox
* ``helpers.exercises``   - build exercise notebooks from solutions, reset a copy

The instructor's grader is the package ``grading`` next to this one (``python -m helpers grade``).

None of them hides the API the course teaches: the notebooks call
``AutoModelForCausalLM.from_pretrained(...)`` themselves.
"""

from .device import best_device, best_dtype
from .diagnostics import describe, environment_report
from .models import CourseSetupError, model_path, models_dir, resolve_model
from .provision import prepare

__all__ = [
    "best_device", "best_dtype", "describe", "environment_report",
    "CourseSetupError", "model_path", "models_dir", "prepare", "resolve_model",
]
