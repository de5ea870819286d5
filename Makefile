# medveil: the two commands a new user needs.
#   make demo   set up, then de-identify a generated sample (from pydicom's bundled files)
#   make test   set up, then run the whole test suite (what .ci/run runs)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= demo

.PHONY: setup demo test bench bench-scale bench-midi bench-robustness clean tables

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test,ocr,scale,cxr]"
	# lung masks for medveil cxr ship inside this wheel; its torchvision dependency is not wanted
	$(PY) -m pip install --quiet --no-deps torchxrayvision
	touch $@

demo: setup
	rm -rf $(DEMO)/output $(DEMO)/output.medveil-workspace $(DEMO)/mappings
	$(PY) tools/make_sample.py $(DEMO)/input
	test -f $(DEMO)/demo.key || $(VENV)/bin/medveil keygen $(DEMO)/demo.key
	$(VENV)/bin/medveil deidentify $(DEMO)/input $(DEMO)/output --profile tcia \
		--key-file $(DEMO)/demo.key --mappings $(DEMO)/mappings; rc=$$?; [ $$rc -le 1 ] || exit $$rc
	@echo "release tree:"; find $(DEMO)/output -name '*.dcm' | head -n 20
	$(VENV)/bin/medveil deidentify $(DEMO)/input $(DEMO)/output --profile tcia --key-file $(DEMO)/demo.key --dry-run
	$(VENV)/bin/medveil verify $(DEMO)/output --key-file $(DEMO)/demo.key

# pytest exits 5 when it collects nothing: that must fail, not pass quietly.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: setup
	$(PY) -m pip install --quiet -e ".[test,scale,bench]"
	$(PY) benchmarks/throughput.py

# 2,000+ generated files: copy, pydicom, medveil local (1 and 2 workers), Dask and dicognito;
# e.g. make bench-scale SCALE_ARGS="--files 500 --repeats 3".
bench-scale: setup
	$(PY) benchmarks/scale.py $(SCALE_ARGS)

# MIDI-B style scores of medveil and its peers (each peer in its own venv under .bench/venvs)
# on one synthetic set; e.g. make bench-midi MIDI_ARGS="--max-files 60 --peers deid".
bench-midi: setup
	$(PY) benchmarks/midi_bench.py $(MIDI_ARGS)

# Hostile inputs, kill -9, concurrent runs, devices and symlinks (issue 13): 10,000 mutants by default;
# e.g. make bench-robustness ROBUSTNESS_ARGS="--mutants 2000 --workers 2 --json robustness.json".
bench-robustness: setup
	$(PY) benchmarks/robustness.py $(ROBUSTNESS_ARGS)

tables:
	$(PY) tools/build_tables.py

clean:
	rm -rf $(DEMO) build dist .pytest_cache .hypothesis
