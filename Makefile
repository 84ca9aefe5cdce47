# The course in two commands:  `make lab`  and  `make test`.
# Both run the set-up first; it is idempotent (a second run takes seconds).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8888

# The Hub is never needed: the course models are built locally (helpers prepare).
# Set before Python starts, so transformers never waits on a Hub lookup.
# To use a hub id (COURSE_MODEL=org/name) on a networked machine:  make lab HF_HUB_OFFLINE=0
HF_HUB_OFFLINE ?= 1
export HF_HUB_OFFLINE
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The suite runs on every core (pytest-xdist, one file or notebook per worker at a time). Each
# worker and each notebook kernel then gets one thread: two torch processes with two threads each
# on two cores spin against each other. Timings printed under test are not compared (nbval masks
# them); the outputs stored in the notebooks come from an idle machine (README, Tests).
TEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile

.PHONY: setup browser lab test test-quick test-colab fuzz bench execute help hub hub-deps hub-loadtest hub-root workshop-prereqs

help:
	@echo "make lab    - set up, then start JupyterLab on the notebooks"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make test-quick - the authors' loop: unit and check tests, exercises in sync (no notebooks)"
	@echo "make test-colab - every lesson and solution in a stand-in for Colab (Python 3.13, Colab's versions; build/colab-env)"
	@echo "make fuzz   - random hostile answers and forged records against every check, 500 per test (minutes)"
	@echo "make setup  - create .venv, install the pins, prepare the course models"
	@echo "make browser - install Debian's chromium and bubblewrap for the browser and sandbox tests (root only)"
	@echo "make bench  - benchmark notebooks, loading and decoding (writes BENCHMARK.md)"
	@echo "make execute NB=\"notebooks/03_dtypes.ipynb ...\" - run notebooks and store their outputs (authors)"
	@echo "make hub    - (root) JupyterHub for a workshop on this machine, on 127.0.0.1:8000 (workshop/README.md)"
	@echo "make hub-loadtest USERS=4 - (root) N learners run a lesson at once on the hub; memory, time, capacity"

setup: $(VENV)/.installed
	$(PY) -m helpers prepare

# The pins need Python 3.11+: say so, and how to get it, before pip starts resolving.
$(PY):
	@$(PYTHON) helpers/python_version.py --pins >/dev/null
	$(PYTHON) -m venv $(VENV)

# Re-installs only when the pins or the package metadata change.
$(VENV)/.installed: requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

lab: setup
	@echo "Starting JupyterLab; open the URL with the token printed below."
	$(VENV)/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) \
		--ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Debian packages some tests need: chromium for the browser test (Playwright drives it; no browser
# download), bubblewrap for the grader's --sandbox. Without root, the tests that need them are skipped.
browser:
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	if [ -z "$$missing" ]; then echo "chromium, bubblewrap: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's$$missing (once)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "not installed (needs root and apt-get):$$missing; the tests that need them will be skipped"; fi

test: setup browser workshop-prereqs
	$(PY) -m helpers exercises build --check
	OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_PARALLEL) --durations=10

test-quick: setup
	$(PY) -m helpers exercises build --check
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -m "not slow" $(PYTEST_PARALLEL) --durations=5

# A stand-in for a Colab runtime (tools/colab_profile.py): build/colab-env on Python 3.13 with Colab's
# published versions (tools/colab/versions.txt) and a stub google.colab; runs the notebooks' Colab cell
# there on a fresh copy of this checkout, then every lesson and solution. No .venv needed.
COLAB_PYTHON ?= $(shell command -v python3.13 || echo $(HOME)/.pyenv/versions/3.13.0/bin/python3)
test-colab:
	python3 tools/colab_profile.py --python $(COLAB_PYTHON)

# The suite's Hypothesis tests are derandomized (profile "ci" in conftest.py: the same examples on every
# run). This target draws new random ones, many more, and keeps failures in .hypothesis/ to replay first;
# add each value it finds to HOSTILE (tests/support.py) so the normal suite keeps it fixed.
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz OMP_NUM_THREADS=1 $(PY) -m pytest tests/test_checks_fuzz.py tests/test_answers.py \
		-n $(TEST_WORKERS) --dist load --durations=5

execute: setup
	$(PY) -m tools.execute $(NB)

bench: setup
	$(PY) -m benchmarks

# --- Workshops: JupyterHub on this machine (workshop/README.md). Needs root: one unix user per learner.
# The learners' servers and kernels cannot use .venv when its interpreter is private (pyenv under
# /root, mode 0700), so the hub gets its own environment, the same pins, from a Python every user
# can run (Debian's); TLJH does the same with /opt/tljh/user. The course is put on its path (.pth).
HUB_PYTHON ?= /usr/bin/python3
HUB_ENV    ?= build/hub-env
USERS      ?= 4
HUB_LESSON ?= notebooks/01_loading.ipynb

hub-deps: $(HUB_ENV)/.installed workshop/node_modules/.installed

$(HUB_ENV)/.installed: requirements.txt | $(PY)
	$(HUB_PYTHON) -m venv --without-pip $(HUB_ENV)
	$(PY) -m pip --python $(HUB_ENV)/bin/python install --quiet -r requirements.txt
	$(HUB_ENV)/bin/python -c "import site, sys; open(site.getsitepackages()[0] + '/course.pth', 'w').write(sys.argv[1] + '\n')" $(CURDIR)
	@touch $@

# configurable-http-proxy, pinned in workshop/package-lock.json, installed locally (never committed)
workshop/node_modules/.installed: workshop/package.json workshop/package-lock.json
	npm ci --prefix workshop --no-audit --no-fund --loglevel=error
	@touch $@

hub: hub-root setup hub-deps
	$(HUB_ENV)/bin/jupyterhub -f workshop/jupyterhub_config.py

hub-loadtest: hub-root setup hub-deps
	$(HUB_ENV)/bin/python -m workshop.loadtest --users $(USERS) --lesson $(HUB_LESSON)

hub-root:
	@[ "$$(id -u)" = 0 ] || { echo "the workshop hub needs root: it creates a unix user per learner"; exit 1; }

# What tests/test_workshop.py needs, where the machine allows it (root, npm, a Python all users can
# run); elsewhere the test is skipped and says why.
workshop-prereqs: setup
	@if [ "$$(id -u)" = 0 ] && command -v npm >/dev/null && [ -x $(HUB_PYTHON) ]; then $(MAKE) --no-print-directory hub-deps; \
	else echo "workshop hub: not installed (needs root, npm and $(HUB_PYTHON)); its test will be skipped"; fi
