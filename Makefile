# Two commands do all set-up on a fresh machine:
#   make lab    set up, then start JupyterLab on notebooks/ (local backend)
#   make test   set up, then run the whole test suite (what .ci/run calls)
# Everything installs into .venv with the Python found as $(PYTHON) (3.11+).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.meshkit-installed

.PHONY: setup lab test test-fast tour bench clean

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

test: setup
	$(PY) tests/setup_system.py
	$(PY) -m pytest -p no:cacheprovider -q --durations=15 tests

# The developer's loop: the pure tests only (no processes, sockets or browser), under a minute.
test-fast: setup
	$(PY) -m pytest -p no:cacheprovider -q tests/unit

tour: setup
	$(VENV)/bin/meshkit tour

bench: setup
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/lab_timings.py
	$(PY) benchmarks/otlp_export.py

clean:
	rm -rf $(VENV) .pytest_cache
