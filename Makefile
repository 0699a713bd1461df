# Two commands do all set-up on a fresh machine:
#   make lab    set up, then start JupyterLab on notebooks/ (local backend)
#   make test   set up, then run the whole test suite but its slow tier (what .ci/run calls)
# Everything installs into .venv with the Python found as $(PYTHON) (3.11+).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.meshkit-installed

.PHONY: setup lab test test-fast test-slow tour bench clean

LAB_SETTINGS = $(VENV)/share/jupyter/lab/settings/overrides.json

setup: $(STAMP) $(LAB_SETTINGS)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "meshkit needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

# JupyterLab defaults for this venv's JupyterLab only (its application settings
# directory; a learner's own settings still win): the file browser drops its
# Modified column so the notebooks' names get the sidebar's width.
$(LAB_SETTINGS): jupyterlab-settings/overrides.json $(STAMP)
	@mkdir -p $(dir $@)
	cp $< $@

# Jupyter refuses to run as root unless told; containers often run as root.
ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $(ROOT_FLAG)

# The tiers (markers registered in pyproject.toml; tests/conftest.py says how each is given):
#   test-fast  the pure tests (tests/unit, marked fast): the developer's loop, under 2 minutes
#   test       everything but the slow tier, in two passes:
#              1. all but the serial tests on two workers (pytest-xdist; tests/conftest.py hands
#                 out a test file as one unit, so its module-scoped lab starts once, and each
#                 notebook as a unit of its own, the longest kinds first);
#              2. the tests marked serial, alone: each asserts a bound on timing or on a rate
#                 (its comment says which) that the other worker's load could push it past.
#   test-slow  the tests marked slow: minutes each on purpose (rotation over many certificate
#              lifetimes), one at a time
# CI (.ci/run) runs `make test`, then `make test-slow`.
PYTEST = $(PY) -m pytest -p no:cacheprovider -q

test: setup
	$(PY) tests/setup_system.py
	$(PYTEST) -n 2 --dist loadfile -m "not slow and not serial" --durations=15 tests
	$(PYTEST) -m "serial and not slow" --durations=5 tests

test-fast: setup
	$(PYTEST) -m fast tests/unit

test-slow: setup
	$(PY) tests/setup_system.py
	$(PYTEST) -m slow --durations=15 tests

tour: setup
	$(VENV)/bin/meshkit tour

bench: setup
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/lab_timings.py
	$(PY) benchmarks/otlp_export.py

clean:
	rm -rf $(VENV) .pytest_cache
