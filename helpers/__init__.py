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
* ``helpers.machine``     - facts about this CPU (its name, native bf16) on Linux, macOS and Windows
* ``helpers.outcomes``    - the outcomes of a check and how each is shown (a leaf module)
* ``helpers.answers``     - answers as plain data: saved in the learner's kernel, loaded by the judge
* ``helpers.checking``    - the ``q1.check() / hint() / solution()`` machinery
* ``helpers.tables``      - learner x question tables and CSV, safe for learners' strings
* ``helpers.progress``    - every ``qN.check()`` recorded for the instructor's progress view
* ``helpers.markers``     - the ``# BEGIN SOLUTION qN`` markers
* ``helpers.checks``      - one module per lesson's questions, ``common`` the shared toolbox
* ``helpers.exercises``   - build exercise notebooks from solutions, reset a copy
* ``helpers.commands``    - ``course setup | lab | test``: the make-free path, on every OS
* ``helpers.python_version`` - the Python minimum and its message (standard library only)

The instructor's grader is the package ``grading`` next to this one (``python -m helpers grade``).

None of them hides the API the course teaches: the notebooks call
``AutoModelForCausalLM.from_pretrained(...)`` themselves.
"""

import importlib

# Loaded on first use (PEP 562), so that importing one module (``helpers.outcomes`` in the grader's
# worker, ``helpers.checks.lesson01`` in a notebook) does not import torch, psutil and provisioning.
_EXPORTS = {
    "best_device": "device", "best_dtype": "device", "describe": "diagnostics",
    "environment_report": "diagnostics", "CourseSetupError": "models", "model_path": "models",
    "models_dir": "models", "resolve_model": "models", "prepare": "provision",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
