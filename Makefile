# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dmft-installed
DOCS_STAMP := $(VENV)/.dmft-docs-installed
NBSTAMP := $(VENV)/.dmft-notebook-installed

.PHONY: run test test-fast install clean clean-cache validate docs notebook

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

# one pip call for both extras (the test extras too, so that `make test` finds them installed)
$(DOCS_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,docs]"
	@touch $(STAMP) $(DOCS_STAMP)

$(NBSTAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[test,notebook]"
	@touch $(NBSTAMP)

# JupyterLab on notebooks/, from the project's environment (its kernel is .venv's Python, which
# imports dmft).  No browser is opened: open the http://127.0.0.1:PORT/lab?token=... URL it
# prints (on a remote machine, through `ssh -L PORT:127.0.0.1:PORT`).  Ctrl-C stops it.
# NOTEBOOK_ARGS passes more options, e.g. make notebook NOTEBOOK_ARGS=--port=8899
notebook: $(NBSTAMP)
	$(VENV)/bin/jupyter lab --no-browser --ip=127.0.0.1 --notebook-dir=notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(NOTEBOOK_ARGS)

# The paper's story in one figure, out/paper_story.png: (a) the paper's case, DMFT against GD;
# (b) He3 under one-pass and multi-pass GD (examples/paper_story.py says more).
run: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/dmft compare examples/paper_tanh_he3.toml --out out
	MPLBACKEND=Agg $(VENV)/bin/dmft compare examples/he3_reuse.toml --schedules one-pass,multi-pass --out out
	MPLBACKEND=Agg $(PY) examples/paper_story.py out

# The whole suite on TEST_JOBS pytest-xdist workers (2: CI's two cores; measured 414 s against
# 485 s in one process on the 2-core machine, warm caches).  TEST_JOBS=0 runs it in one process.
TEST_JOBS ?= 2
test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -ra $(if $(filter-out 0,$(TEST_JOBS)),-n $(TEST_JOBS)) tests

# The unit tier: everything but the tests marked slow (about a minute once compiled).
test-fast: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -ra -m "not slow" tests

# The documentation (docs/_build/html/index.html), warnings as errors, nitpicky: a broken
# reference, equation number or docstring fails the build.
docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(VENV)/bin/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html

# numba does not notice edits to jitted helpers imported from another module: clear its cache
clean-cache:
	find dmft -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf out .pytest_cache docs/_build docs/notebooks

# Full validation suite (minutes): runs in the background, resumes from finished cases.
validate: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/dmft validate --background --out validation/results
