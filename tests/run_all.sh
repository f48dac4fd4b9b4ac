#!/usr/bin/env bash
# Every test, in order of speed; `make test` runs this after `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== lint: ruff, forge fmt"
forge fmt --check contracts tests/foundry
ruff check .
ruff format --check .

echo "== slither (fails on high or medium)"
bash tests/slither.sh

echo "== forge: unit, fuzz and invariant tests (seed and run counts in foundry.toml)"
forge test

echo "== ape: contract tests on anvil (OP-stack mode)"
ape test tests/test_genimnft.py --network optimism:local:foundry -p no:cacheprovider

echo "== ape: every Python test on the in-process chain"
ape test tests -p no:cacheprovider
