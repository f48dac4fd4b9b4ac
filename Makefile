# GenImNFT: everything installs from the project's own files (npm, PyPI); nothing else is downloaded.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
TOOLS := $(ROOT)/.cache/bin
SOLC_VERSION := 0.8.28

export PATH := $(TOOLS):$(VENV)/bin:$(PATH)
export SOLCX_BINARY_PATH := $(ROOT)/.cache/solcx
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

PROMPT ?= a lighthouse on a basalt cliff at dawn, oil painting
MODEL ?=
TIER ?= 0

.PHONY: help setup test test-forge test-ape lint slither demo bench-gas clean

help:
	@echo "make demo       local chain + deploy + mint, end to end (sets itself up)"
	@echo "make test       every test: forge unit/fuzz/invariant, Ape on two chains, slither, ruff"
	@echo "make bench-gas  gas per operation next to GenImNFTv4"
	@echo "make setup      install the toolchain (idempotent)"

setup: node_modules/.installed $(VENV)/.installed $(TOOLS)/.linked

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools==84.2.1
	$(VENV)/bin/pip install -q --no-deps -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

# One compiler for everyone: forge (foundry.toml), Ape (py-solc-x's installed-binary name) and slither (PATH).
$(TOOLS)/.linked: node_modules/.installed
	mkdir -p $(TOOLS) $(SOLCX_BINARY_PATH)
	for tool in forge anvil cast; do ln -sf $(ROOT)/node_modules/@foundry-rs/$$tool-linux-amd64/bin/$$tool $(TOOLS)/$$tool; done
	ln -sf $(ROOT)/toolchain/solc.js $(TOOLS)/solc
	ln -sf $(ROOT)/toolchain/solc.js $(SOLCX_BINARY_PATH)/solc-v$(SOLC_VERSION)
	@touch $@

test: setup
	bash tests/run_all.sh

lint: setup
	ruff check oracle tests scripts bench
	ruff format --check oracle tests scripts bench
	forge fmt --check contracts tests/foundry

slither: setup
	bash tests/slither.sh

demo: setup
	python scripts/demo.py --prompt "$(PROMPT)" --tier $(TIER) $(if $(MODEL),--model "$(MODEL)")

bench-gas: setup
	python bench/gas.py

clean:
	rm -rf out cache .build contracts/.cache
