# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0
export OMP_WAIT_POLICY ?= PASSIVE
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: install demo test lint bench clean

install: $(STAMP)

# torch first, then everything else held by constraints.txt so nothing upgrades torch or
# pulls CUDA wheels on a CPU-only machine.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/worldmodel demo

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/bench_rasterizer.py

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache
