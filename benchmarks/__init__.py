"""The course benchmark (``make bench``): see ``benchmarks/__main__.py`` for what each section measures."""
