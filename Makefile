# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dmft-installed

.PHONY: run test test-fast install clean clean-cache validate

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/dmft compare examples/paper_tanh_he3.toml --out out

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -ra tests

# The unit tier: everything but the tests marked slow (about a minute once compiled).
test-fast: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -ra -m "not slow" tests

# numba does not notice edits to jitted helpers imported from another module: clear its cache
clean-cache:
	find dmft -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf out .pytest_cache

# Full validation suite (minutes): runs in the background, resumes from finished cases.
validate: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/dmft validate --background --out validation/results
