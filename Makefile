# Two entry points for a fresh machine: `make demo` and `make test` (each installs into .venv first).
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.ovseg-installed
# Parallel test workers; CI machines have 2 cores.
TEST_WORKERS ?= 2

.PHONY: install demo test test-fast clean

install: $(STAMP)

$(STAMP): setup.py
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch/torchvision are served from this machine's local wheel store.
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev]'
	# Meta's sam2 (Sa2VA's grounding encoder) is an sdist whose isolated build would download another torch and
	# CUDA wheels: build it against this torch, no CUDA extension, no deps (hydra-core/iopath come with .[dev]).
	$(VPY) -c "import importlib.metadata as m; assert m.version('sam2') == '1.1.0'" 2>/dev/null || \
		SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation --no-deps sam2==1.1.0
	# panopticapi-lite pins numpy<2 in its metadata but its code runs on numpy 2.
	$(PIP) install -q --no-deps panopticapi-lite
	touch $(STAMP)

demo: install
	$(VPY) tools/toy_demo.py

test: install
	$(VPY) -m pytest -n $(TEST_WORKERS) --durations=15 tests

test-fast: install
	$(VPY) -m pytest -n $(TEST_WORKERS) -m 'not slow' tests

clean:
	rm -rf work_dirs data/toy_scenes .pytest_cache
