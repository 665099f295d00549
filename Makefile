# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
NERFSTUDIO_STAMP := $(VENV)/.installed-nerfstudio
TORCH ?= torch==2.13.0
export OMP_WAIT_POLICY ?= PASSIVE
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: install install-nerfstudio chromium demo test docs docs-serve lint bench bench-nerf clean

install: $(STAMP)

# torch first, then everything else held by constraints.txt so nothing upgrades torch or
# pulls CUDA wheels on a CPU-only machine.
# An editable install leaves out worldmodel-gym.pth (setup.py puts it in wheels), the start-up hook
# that lets gymnasium.make("worldmodel/...") work without importing our package: copy it in.
$(STAMP): pyproject.toml setup.py constraints.txt worldmodel-gym.pth
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -c constraints.txt -e ".[dev]"
	$(PIP) install --quiet -c constraints.txt --no-deps viser==0.2.7
	cp worldmodel-gym.pth "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	touch $(STAMP)

# The nerfstudio backend (NeRF scenes): its runtime needs through the extra, then nerfstudio and
# viser without their pins (numpy 1.x, open3d, CUDA torchvision); see README "NeRF scenes".
install-nerfstudio: $(NERFSTUDIO_STAMP)

$(NERFSTUDIO_STAMP): $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e ".[dev,nerfstudio]"
	$(PIP) install --quiet -c constraints.txt --no-deps nerfstudio==1.1.5 viser==0.2.7
	touch $(NERFSTUDIO_STAMP)

# The viewer's browser test (tests/test_view.py) drives Debian's chromium headless: installed here where it is
# missing (as root, or through sudo); where it cannot be installed the test skips and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; } || \
	  echo "chromium could not be installed: tests/test_view.py's browser test will be skipped"

demo: install
	$(VENV)/bin/worldmodel demo

# CI exercises the nerfstudio backend for real, so the tests install it too.
test: install install-nerfstudio chromium
	$(PY) -m pytest -q

# The documentation site (MkDocs Material + mkdocstrings) into site/; the tests build it with --strict too.
docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir site

docs-serve: install
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) benchmarks/bench_rasterizer.py

# nerfacto against our splats on the example room; tests/shims stands in for torchvision where the
# real one cannot load (CPU torch with CUDA torchvision wheels).
bench-nerf: install-nerfstudio
	PYTHONPATH=$(CURDIR)/tests/shims $(PY) benchmarks/bench_nerf_vs_splat.py

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache site
