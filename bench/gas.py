"""Gas per operation on a fresh anvil, next to the original GenImNFTv4's figures.

Run with `make bench-gas` (or `ape run` is not needed: `python bench/gas.py`). Prints one `name=value` line
per figure with the GenImNFTv4 baseline and the ratio, checks the budgets, and writes bench/results/gas.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ape

RESULTS = Path(__file__).parent / "results" / "gas.json"
PROMPT_200 = ("A lighthouse on a basalt cliff at dawn, oil painting, warm light, " * 4)[:200]
# GenImNFTv4 (UUPS, OpenZeppelin) on anvil: one mint, one image update; it has no batch call.
BASELINE = {"mint_repeat": 206_607, "mint_first": 206_607, "set_image": 142_379, "set_images16_per_token": 142_379}
BUDGET = {"mint_repeat": 70_000, "mint_first": 92_000, "set_image": 66_000, "set_images16_per_token": 36_000}
BATCH = 16


def measure() -> dict[str, int]:
    owner, oracle, repeat, *fresh = ape.accounts.test_accounts[:24]
    basic = 10**15
    nft = owner.deploy(ape.project.GenImNFT, owner, [basic, 4 * basic, 16 * basic], 500, [oracle])
    nft.mint("first token", 0, 0, sender=repeat, value=basic)
    mint_repeat = nft.mint(PROMPT_200, 0, 0, sender=repeat, value=basic)
    mint_first = nft.mint(PROMPT_200, 0, 0, sender=fresh[0], value=basic)
    token = mint_repeat.return_value
    set_image = nft.setImage(token, b"\x11" * 32, sender=oracle)
    # Warm the oracle's credit slot as in steady state (setImage above did), then a batch of 16.
    tokens = [nft.mint(PROMPT_200, 0, 0, sender=fresh[1 + i % 20], value=basic).return_value for i in range(BATCH)]
    batch = nft.setImages(tokens, [bytes([i + 1]) * 32 for i in range(BATCH)], sender=oracle)
    return {
        "mint_repeat": mint_repeat.gas_used,
        "mint_first": mint_first.gas_used,
        "set_image": set_image.gas_used,
        "set_images16_per_token": batch.gas_used // BATCH,
    }


def main() -> int:
    with ape.networks.parse_network_choice("ethereum:local:foundry"):
        figures = measure()
    over = []
    for name, value in figures.items():
        ratio = BASELINE[name] / value
        print(f"{name}={value} genimnft_v4={BASELINE[name]} ratio={ratio:.2f}x budget={BUDGET[name]}")
        if value > BUDGET[name]:
            over.append(name)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    if over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
