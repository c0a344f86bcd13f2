# Quick start: `make demo` and `make test` on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -c constraints.txt
STAMP := $(VENV)/.stamp

.PHONY: demo test test-fast bench lint clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP)-run: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -q -e .
	touch $@

$(STAMP)-dev: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -q -e ".[dev]"
	touch $@ $(STAMP)-run

demo: $(STAMP)-run
	$(VENV)/bin/stalwart demo --out demo-report

test: $(STAMP)-dev
	$(PY) -m pytest -n 2 -q

test-fast: $(STAMP)-dev
	$(PY) -m pytest -n 2 -q -m "not slow"

# peers live in their own environment so they never move the project's pins
BENCH := .venv-bench
$(BENCH)/.stamp: pyproject.toml constraints.txt benchmarks/requirements.txt benchmarks/requirements-nodeps.txt
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install -q --upgrade pip
	$(BENCH)/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
	echo "torch==2.13.0" > $(BENCH)/torch-pin.txt
	$(BENCH)/bin/python -m pip install -q -c $(BENCH)/torch-pin.txt -r benchmarks/requirements.txt
	$(BENCH)/bin/python -m pip install -q --no-deps -r benchmarks/requirements-nodeps.txt
	touch $@

# alibi-detect pins numpy < 2: a third environment, used by bench_drift.py for its MMD peer
ALIBI := .venv-alibi
$(ALIBI)/.stamp: benchmarks/requirements-drift.txt
	$(PYTHON) -m venv $(ALIBI)
	$(ALIBI)/bin/python -m pip install -q --upgrade pip
	$(ALIBI)/bin/python -m pip install -q -r benchmarks/requirements-drift.txt
	touch $@

# sliceline and deepchecks (the weak-slice peers of benchmarks/slice_peers.py): deepchecks 0.19 needs
# numpy < 2 and an older scikit-learn, a fourth environment
SLICES := .venv-slices
$(SLICES)/.stamp: benchmarks/requirements-slices.txt
	$(PYTHON) -m venv $(SLICES)
	$(SLICES)/bin/python -m pip install -q --upgrade pip
	$(SLICES)/bin/python -m pip install -q -r benchmarks/requirements-slices.txt
	touch $@

# NannyML (the CBPE peer of benchmarks/bench_estimators.py) pins its own pandas/numpy: a fifth environment
NANNYML := .venv-nannyml
$(NANNYML)/.stamp: benchmarks/requirements-nannyml.txt
	$(PYTHON) -m venv $(NANNYML)
	$(NANNYML)/bin/python -m pip install -q --upgrade pip
	$(NANNYML)/bin/python -m pip install -q -r benchmarks/requirements-nannyml.txt
	touch $@

bench: $(BENCH)/.stamp $(ALIBI)/.stamp $(SLICES)/.stamp $(NANNYML)/.stamp
	$(BENCH)/bin/python benchmarks/run_all.py $(BENCHMARKS)

lint: $(STAMP)-dev
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(BENCH) $(ALIBI) $(SLICES) demo-report .pytest_cache
