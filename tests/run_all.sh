#!/usr/bin/env bash
# Every test, in order of speed; `make test` runs this after `make setup`. One suite alone:
#   bash tests/run_all.sh lint|slither|forge|ape   (`make lint`, `make slither`, `make test-forge`, `make test-ape`)
set -euo pipefail
cd "$(dirname "$0")/.."

lint() {
  echo "== lint: ruff, forge fmt"
  forge fmt --check # its paths and ignores are foundry.toml's (Ape's contracts/.cache is not ours)
  ruff check .
  ruff format --check .
}

slither() {
  echo "== slither (fails on high or medium)"
  bash tests/slither.sh
}

forge_suite() {
  echo "== forge: unit, fuzz and invariant tests (seed and run counts in foundry.toml)"
  forge test
}

ape_suite() {
  echo "== ape: contract tests on anvil (OP-stack mode)"
  ape test tests/test_genimnft.py --network optimism:local:foundry -p no:cacheprovider
  echo "== ape: every Python test on the in-process chain"
  ape test tests -p no:cacheprovider
}

case "${1:-all}" in
  lint) lint ;;
  slither) slither ;;
  forge) forge_suite ;;
  ape) ape_suite ;;
  all) lint && slither && forge_suite && ape_suite ;;
  *)
    echo "usage: $0 [lint|slither|forge|ape|all]" >&2
    exit 2
    ;;
esac
