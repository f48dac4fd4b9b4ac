"""What the daemon benchmarks share: a local stack (anvil in OP-stack mode with a block time, a js-ipfs node,
GenImNFT deployed with Circle's USDC and Chainlink's feeds, the tiny pipeline), bursts of ETH mints, and
wall-clock timing of each image's arrival."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genim_devnet.localnet import Anvil, IpfsNode, anvil, ipfs_node  # noqa: E402
from genim_devnet.tiny_model import build_tiny_pipeline  # noqa: E402
from tests.services import Deployment, account_key, oracle_config, start_daemon, write_config  # noqa: E402, F401


@dataclass
class Stack:
    chain: Anvil
    ipfs: IpfsNode
    deployment: Deployment
    model: Path


@contextlib.contextmanager
def local_stack(block_time: float) -> Iterator[Stack]:
    import ape

    model = build_tiny_pipeline(ROOT / ".cache" / "tiny-sd")
    with anvil(block_time=block_time) as chain, ipfs_node() as ipfs:
        deployment = Deployment(chain.url, ape.project.GenImNFT.contract_type)
        yield Stack(chain, ipfs, deployment, model)


class Minter:
    """Sends mints from many accounts without waiting for receipts, keeping each account's nonce."""

    def __init__(self, deployment: Deployment, accounts: int) -> None:
        self.deployment = deployment
        self.keys = [account_key(2 + i) for i in range(accounts)]
        self.nonces = {key.address: deployment.w3.eth.get_transaction_count(key.address) for key in self.keys}
        self.sent: list[tuple[float, bytes]] = []

    def burst(self, count: int, tier_of: Callable[[int], int] = lambda i: 0) -> None:
        """Sends `count` ETH mints, each paying the tier's price in wei at the burst's start (the feed's rate
        does not move here) and naming the oracle epoch then."""
        w3, stack = self.deployment.w3, self.deployment.stack
        fees = {"maxFeePerGas": 10 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
                "maxPriorityFeePerGas": 10**6}  # fmt: skip
        prices = [stack.price_in_wei(tier) for tier in range(3)]
        epoch = stack.oracle_epoch()
        for _ in range(count):
            key = self.keys[len(self.sent) % len(self.keys)]
            tier = tier_of(len(self.sent))
            prompt = f"load request {len(self.sent)}: a lighthouse at dawn"
            tx = stack.nft.functions.mint(prompt, tier, len(self.sent) % 4, epoch).build_transaction(
                {
                    "from": key.address,
                    "value": prices[tier],
                    "nonce": self.nonces[key.address],
                    "gas": 200_000,
                    "chainId": w3.eth.chain_id,
                    **fees,
                }
            )
            self.nonces[key.address] += 1
            self.sent.append((time.time(), w3.eth.send_raw_transaction(key.sign_transaction(tx).raw_transaction)))

    def token_ids(self) -> dict[int, float]:
        """Token id of each mint, with the wall time it was sent."""
        w3, event = self.deployment.w3, self.deployment.nft.events.ImageRequested()
        ids = {}
        for sent_at, tx_hash in self.sent:
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
            from web3.logs import DISCARD

            [log] = event.process_receipt(receipt, errors=DISCARD)
            ids[log["args"]["tokenId"]] = sent_at
        return ids


def watch_images(
    deployment: Deployment, expected: int, timeout: float, on_poll: Callable[[], None] | None = None
) -> dict[int, float]:
    """Polls ImageSet every 0.2 s; returns the wall time each token's image was first seen."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    next_block = deployment.block
    while len(seen) < expected and time.monotonic() < deadline:
        head = deployment.w3.eth.block_number
        if head >= next_block:
            for log in deployment.nft.events.ImageSet().get_logs(from_block=next_block, to_block=head):
                seen.setdefault(log["args"]["tokenId"], time.time())
            next_block = head + 1
        if on_poll:
            on_poll()
        time.sleep(0.2)
    return seen


def generation_seconds(log_path: Path) -> dict[int, float]:
    """Per token, the seconds from "generating" to "job generated" in the daemon's JSON log."""
    started, done = {}, {}
    for line in log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        token = entry.get("token_id")
        if entry.get("msg") == "generating":
            started[token] = entry["ts"]
        elif entry.get("msg") == "job generated" and token in started:
            done[token] = entry["ts"] - started[token]
    return done


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
