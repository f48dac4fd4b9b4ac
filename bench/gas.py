"""Gas per operation on a fresh anvil (OP-stack mode) with Circle's real USDC (FiatTokenV2_2 behind its proxy)
and Chainlink's MockV3Aggregator feeds, next to the original GenImNFTv4's figures.

Run with `make bench-gas` (or `python bench/gas.py`). Prints one `name=value` line per figure with the
GenImNFTv4 baseline and the ratio where there is one, checks the budgets, and writes bench/results/gas.json.

Steady state, as a busy contract sees it: every mint is by a holder of an earlier token except `mint_first`
and `mint_usdc_first`; ETH mints find the checked ETH/USD rate cached (the contract keeps it for
RATE_CACHE_WINDOW = 60 s), except `mint_repeat_rate_read`, a repeat mint after the window that reads both feeds
again (no budget: it shows what the cache saves); USDC mints find the contract already holding USDC, and
`usdc_transfer_with_authorization` is USDC's own transferWithAuthorization of the same value in the same run (to
an account that holds USDC), the floor that `mintWithAuthorization` adds to. USDC figures move by a few tens of
gas between runs: the authorization's nonce and signature are random bytes, and calldata prices zero bytes lower.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from web3 import Web3  # noqa: E402

from genim_devnet.localnet import anvil  # noqa: E402
from genim_devnet.stack import Stack, deploy_stack, dev_account  # noqa: E402
from genim_devnet.txn import send  # noqa: E402
from genim_devnet.usdc import random_nonce, sign_transfer_authorization  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "gas.json"
PROMPT_200 = ("A lighthouse on a basalt cliff at dawn, oil painting, warm light, " * 4)[:200]
# GenImNFTv4 (UUPS, OpenZeppelin) on anvil: one mint, one image update; it has no batch call and no USDC rail.
BASELINE = {"mint_repeat": 206_607, "mint_first": 206_607, "set_image": 142_379, "set_images16_per_token": 142_379}
BUDGET = {
    "mint_repeat": 92_000,
    "mint_first": 110_000,
    "mint_usdc": 160_000,
    "set_image": 66_000,
    "set_images16_per_token": 36_000,
}
BATCH = 16
RATE_CACHE_WINDOW = 60
OWNER, ORACLE, REPEAT, USDC_BUYER, RELAYER, USDC_HOLDER, USDC_FIRST = (dev_account(i) for i in range(7))
FRESH = [dev_account(i) for i in range(7, 27)]  # 28 and 29 hold the devnet USDC's roles


def contract_artifacts() -> tuple[list[dict], str]:
    """GenImNFT's ABI and creation code as Ape compiles the project."""
    import ape

    contract_type = ape.project.GenImNFT.contract_type
    abi = [entry.model_dump(by_alias=True, mode="json") for entry in contract_type.abi]
    return abi, contract_type.deployment_bytecode.bytecode


def mint_eth(stack: Stack, buyer, *, rate_read: bool | None) -> dict:
    """An ETH mint of the basic tier with a 200-byte prompt; checks that it read the feeds (`rate_read`) or used
    the cached rate (not `rate_read`), unless `rate_read` is None."""
    value = stack.price_in_wei(0)
    before = stack.nft.functions.cachedRate().call()
    receipt = send(stack.w3, buyer, stack.mint_call(PROMPT_200, 0), value)
    refreshed = stack.nft.functions.cachedRate().call()[2] != before[2]
    assert rate_read in (None, refreshed), f"expected the mint {'not ' if rate_read else ''}to use the cached rate"
    return receipt


def mint_usdc(stack: Stack, buyer, *, packed: bool) -> dict:
    return send(stack.w3, stack.relayer, stack.authorization_call(buyer, PROMPT_200, 0, packed=packed))


def bare_transfer_with_authorization(stack: Stack, buyer, to: str) -> dict:
    """USDC's transferWithAuthorization of the basic price, v,r,s form, sent by the relayer: the rail's floor."""
    w3, value = stack.w3, stack.nft.functions.price(0).call()
    valid_before, nonce = w3.eth.get_block("latest")["timestamp"] + 3600, random_nonce()
    sig = sign_transfer_authorization(buyer, stack.usdc.address, w3.eth.chain_id, to, value, 0, valid_before, nonce)
    call = stack.usdc.token.functions.transferWithAuthorization(
        buyer.address, to, value, 0, valid_before, nonce, sig.v, sig.r, sig.s
    )
    return send(w3, stack.relayer, call)


def measure(stack: Stack) -> dict[str, int]:
    w3 = stack.w3
    stack.fund_usdc([USDC_BUYER.address, USDC_HOLDER.address, USDC_FIRST.address])
    send(w3, REPEAT, stack.mint_call("first token", 0), stack.price_in_wei(0))  # reads the feeds, warms the cache
    mint_repeat = mint_eth(stack, REPEAT, rate_read=False)
    mint_first = mint_eth(stack, FRESH[0], rate_read=False)
    w3.provider.make_request("evm_increaseTime", [RATE_CACHE_WINDOW + 1])
    w3.provider.make_request("evm_mine", [])  # so that gas is estimated past the window too
    mint_repeat_rate_read = mint_eth(stack, REPEAT, rate_read=True)

    mint_usdc(stack, USDC_BUYER, packed=True)  # the buyer holds a token now, the contract holds USDC
    usdc_vrs = mint_usdc(stack, USDC_BUYER, packed=False)
    usdc_bytes = mint_usdc(stack, USDC_BUYER, packed=True)
    usdc_first = mint_usdc(stack, USDC_FIRST, packed=False)
    bare = bare_transfer_with_authorization(stack, USDC_BUYER, USDC_HOLDER.address)

    set_image = send(w3, ORACLE, stack.nft.functions.setImage(stack.token_id(mint_repeat), b"\x11" * 32))
    set_image_usdc = send(w3, ORACLE, stack.nft.functions.setImage(stack.token_id(usdc_vrs), b"\x12" * 32))
    # The oracle's credit slot is warm as in steady state (setImage above), then a batch of 16 ETH tokens.
    tokens = [stack.token_id(mint_eth(stack, FRESH[1 + i % 19], rate_read=None)) for i in range(BATCH)]
    batch = send(w3, ORACLE, stack.nft.functions.setImages(tokens, [bytes([i + 1]) * 32 for i in range(BATCH)]))
    return {
        "mint_repeat": mint_repeat["gasUsed"],
        "mint_repeat_rate_read": mint_repeat_rate_read["gasUsed"],
        "mint_first": mint_first["gasUsed"],
        "mint_usdc": usdc_vrs["gasUsed"],
        "mint_usdc_bytes": usdc_bytes["gasUsed"],
        "mint_usdc_first": usdc_first["gasUsed"],
        "usdc_transfer_with_authorization": bare["gasUsed"],
        "set_image": set_image["gasUsed"],
        "set_image_usdc": set_image_usdc["gasUsed"],
        "set_images16_per_token": batch["gasUsed"] // BATCH,
    }


def report(figures: dict[str, int]) -> list[str]:
    """Prints each figure with its baseline and budget; returns the names over budget."""
    floor = figures["usdc_transfer_with_authorization"]
    for name, value in figures.items():
        parts = [f"{name}={value}"]
        if name in BASELINE:
            parts.append(f"genimnft_v4={BASELINE[name]} ratio={BASELINE[name] / value:.2f}x")
        if name.startswith("mint_usdc"):
            parts.append(f"usdc_floor={floor} rail_adds={value - floor}")
        if name == "mint_repeat_rate_read":
            parts.append(f"rate_cache_saves={value - figures['mint_repeat']}")
        if name in BUDGET:
            parts.append(f"budget={BUDGET[name]}")
        print(" ".join(parts))
    return [name for name, budget in BUDGET.items() if figures[name] > budget]


def main() -> int:
    abi, bytecode = contract_artifacts()
    with anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        stack = deploy_stack(w3, abi, bytecode, OWNER, [ORACLE.address], relayer=RELAYER)
        figures = measure(stack)
    over = report(figures)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    if over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
