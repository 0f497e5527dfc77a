# The README's two commands: `make bench` (the main job; later the book) and `make test`.
# Both create or refresh the local virtual environment .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.calcas-installed

.PHONY: bench test clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build: an unpinned torch pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $@

bench: $(STAMP)
	$(PY) -m pip install --quiet netcal==1.4.0 || echo "netcal did not install; the benchmark measures without it"
	$(PY) benchmarks/bench.py

# pytest exits 5 when it collects no test: that is a broken suite, said so plainly.
test: $(STAMP)
	$(PY) -m pytest -q --durations=10; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
