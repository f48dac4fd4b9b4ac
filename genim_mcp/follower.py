"""The background follower: the only part of the front that reads the chain while tools run.

A thread trails the head by the configured confirmations, reads `ImageRequested`, `ImageSet` and `Refunded` logs
in bounded ranges into the store (settling payments as their mints confirm), fails a payment whose mint reverted
(saying why: the contract's error, replayed), and keeps a snapshot of the chain's terms (the oracle epoch every
poll; prices in dollars and wei and the timeout every `price_refresh`; head time). paymcp asks the provider
synchronously on the event loop; the provider answers from the store and the snapshot, never from an RPC call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from web3.exceptions import TransactionNotFound, Web3Exception

from genim_mcp.calldata import tag_of
from genim_mcp.config import FrontConfig
from genim_mcp.pricing import Prices, read_prices
from genim_mcp.reverts import replay
from genim_mcp.store import Outdated, SeenRequest, Store
from genim_mcp.units import eth_exact
from genimnft.contract import Chain, RequestEvent

log = logging.getLogger("genim.mcp.follower")
WARN_EVERY = 30.0


@contextmanager
def exit_on_crash(task: str) -> Iterator[None]:
    """A background task that fails unexpectedly ends the process (non-zero) instead of leaving tools waiting on
    an index that no longer moves."""
    try:
        yield
    except BaseException:
        log.critical("the %s crashed; genim-mcp exits", task, exc_info=True)
        logging.shutdown()
        os._exit(70)


def _outdated(authorised: list[tuple[int, int]]) -> Outdated | None:
    """Once the block where an oracle was authorised is scanned (its mints settled), an open payment naming an
    older epoch can never be paid: every mint of it from then on reverts with OracleSetChanged."""
    if not authorised:
        return None
    epoch, block = max(authorised)
    return Outdated(
        epoch,
        f"the owner authorised another oracle in block {block} (oracle epoch {epoch}), after this payment was "
        "prepared: the contract refuses a mint that names an oracle set you were not shown, so no mint of this "
        "payment can succeed any more [OracleSetChanged]. Nothing was charged; a mint sent for it after that block "
        "reverted and cost only its gas",
    )


@dataclass(frozen=True)
class ChainFacts:
    """The chain's terms as last read; replaced whole, so readers never see half an update."""

    chain_id: int
    contract: str
    prices: Prices
    timeout: int
    oracle_epoch: int
    head: int
    head_timestamp: int
    read_at: float  # when prices and timeout were read


class Follower:
    def __init__(self, config: FrontConfig, chain: Chain, store: Store) -> None:
        self.config = config
        self.chain = chain
        self.store = store
        self.facts = self._read_facts(None)
        cursor = store.cursor()
        first = config.first_block()
        if cursor is not None:
            # Re-read the reorg window on every start instead of trusting what was saved.
            self._next = max(first or 0, cursor[0] + 1 - config.reorg_window)
        else:
            self._next = first if first is not None else max(0, self.facts.head - config.reorg_window)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genim-mcp-follower", daemon=True)
        self._last_warning = 0.0
        self._heads: deque[tuple[int, float]] = deque()  # (head, when it was read), until scanned

    def start(self) -> None:
        self.poll_once()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.config.rpc_timeout + 5)

    def _run(self) -> None:
        with exit_on_crash("follower"):
            while not self._stop.wait(self.config.poll_interval):
                try:
                    self.poll_once()
                except (Web3Exception, httpx.HTTPError, OSError, ValueError) as exc:
                    if time.monotonic() - self._last_warning > WARN_EVERY:
                        log.warning("chain unreadable, retrying every %.1f s: %s", self.config.poll_interval, exc)
                        self._last_warning = time.monotonic()

    def poll_once(self) -> None:
        read_at = time.time()
        facts = self._read_facts(self.facts)
        self.facts = facts
        self._heads.append((facts.head, read_at))
        safe = facts.head - self.config.required_confirmations()
        self._check_sent_mints(safe)  # before the scan below fails the same payments in more general words
        while self._next <= safe and not self._stop.is_set():
            last = min(safe, self._next + self.config.log_range - 1)
            self._scan(self._next, last)
            self._next = last + 1
        self._expire(safe)

    def _expire(self, scanned: int) -> None:
        """A link that ran out expires only once every block mined before it ran out is scanned (confirmed as
        deep as events are): the latest head read that is scanned now bounds when a mint could have landed."""
        seen_until = None
        while self._heads and self._heads[0][0] <= scanned:
            seen_until = self._heads.popleft()[1]
        if seen_until is not None:
            self.store.expire_due(seen_until)
            if purged := self.store.purge(seen_until - self.config.order_retention):
                log.info("deleted %d unpaid payments older than %.0f s", purged, self.config.order_retention)

    def _scan(self, first: int, last: int) -> None:
        chain, span = self.chain, self.config.log_range
        requests = chain.requests_between(first, last, span)
        seen = [self._seen(event) for event in requests]
        images = chain.images_set_between(first, last, span)
        refunds = {
            entry["args"]["tokenId"]: entry["transactionHash"].to_0x_hex()
            for entry in chain.contract.events.Refunded().get_logs(from_block=first, to_block=last)
        }
        authorised = [
            (entry["args"]["oracleEpoch"], entry["blockNumber"])
            for entry in chain.contract.events.OracleUpdated().get_logs(from_block=first, to_block=last)
            if entry["args"]["authorised"]
        ]
        timestamp = chain.timestamp(last)
        self.store.record_scan(seen, images, refunds, last, timestamp, time.time(), _outdated(authorised))

    def _seen(self, event: RequestEvent) -> SeenRequest:
        """An ETH mint with what proves which payment it is for: its calldata tag, or its value (the offset)."""
        if event.asset != 0:
            return SeenRequest(event, None)
        tx = self.chain.w3.eth.get_transaction(event.mint_tx)  # type: ignore[arg-type]
        return SeenRequest(event, tag_of(bytes(tx["input"])), int(tx["value"]))

    def _check_sent_mints(self, safe: int) -> None:
        """A sent mint that reverted (confirmed as deep as events are) fails its payment, saying why and what it
        cost; one that succeeded settles it through its event. A reported hash that is not a mint for this
        payment is dropped."""
        w3 = self.chain.w3
        for order_id, tx_hash in self.store.sent_mints():
            try:
                receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue  # pending, or never sent: the payment stays open until it expires
            if receipt["status"] == 1 or receipt["blockNumber"] > safe:
                continue
            tx = w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            if tx["to"] != self.chain.address or tag_of(bytes(tx["input"])) != bytes.fromhex(order_id):
                log.warning("payment %s: transaction %s is not its mint; ignored", order_id, tx_hash)
                self.store.forget_mint(order_id, tx_hash)
                continue
            revert = replay(w3, dict(tx), receipt["blockNumber"])
            gas = eth_exact(receipt["gasUsed"] * receipt["effectiveGasPrice"])
            why = revert.explain() if revert else "the contract reverted it"
            self.store.fail(
                order_id,
                f"the mint in tx {tx_hash} reverted: {why}. Nothing was charged but that transaction's gas "
                f"({gas} ETH); the contract keeps no payment from a reverted mint",
                renewable=revert is not None and revert.renewable,
            )

    def _read_facts(self, previous: ChainFacts | None) -> ChainFacts:
        block = self.chain.w3.eth.get_block("latest")
        head, head_timestamp = block["number"], block["timestamp"]
        # Every poll: a mint must name the current epoch, and the owner may bump it at any block.
        epoch = self.chain.contract.functions.oracleEpoch().call(block_identifier=head)
        now = time.time()
        if previous is not None and now - previous.read_at < self.config.price_refresh:
            return ChainFacts(
                previous.chain_id,
                previous.contract,
                previous.prices,
                previous.timeout,
                epoch,
                head,
                head_timestamp,
                previous.read_at,
            )
        return ChainFacts(
            self.chain.chain_id(),
            self.chain.address,
            read_prices(self.chain),
            self.chain.timeout(),
            epoch,
            head,
            head_timestamp,
            now,
        )
