"""Local mode's wallet: the buyer's own key sends each payment's mint, one at a time, from a background thread.

The caps are enforced when the payment is recorded (`Store.create_order`), before anything reaches this queue.
Each mint names the order's oracle epoch and sends the order's `max_wei` (the price plus the rate margin; the
contract returns what it does not charge). It is simulated first: a revert fails the payment with the contract's
error, in words, and sends nothing. A mint that reverts once mined is caught by the follower.
"""

from __future__ import annotations

import logging
import queue
import threading

import httpx
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError, Web3Exception

from genim_mcp.calldata import MintQuote
from genim_mcp.follower import exit_on_crash
from genim_mcp.reverts import revert_of
from genim_mcp.store import Order, Store
from genim_mcp.terms import order_terms
from genimnft.contract import Chain

log = logging.getLogger("genim.mcp.wallet")


class LocalWallet:
    def __init__(self, chain: Chain, store: Store, account: LocalAccount) -> None:
        self.chain = chain
        self.store = store
        self.account = account
        self.address = account.address
        self._queue: queue.Queue[Order | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="genim-mcp-wallet", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def pay(self, order: Order) -> None:
        """Queues the mint for `order`; returns at once (paymcp calls the provider on the event loop)."""
        self._queue.put(order)

    def _run(self) -> None:
        with exit_on_crash("local wallet"):
            while (order := self._queue.get()) is not None:
                try:
                    self.store.mint_sent(order.id, self._send(order))
                except ContractLogicError as exc:
                    revert = revert_of(exc)
                    why = revert.explain() if revert else str(exc)
                    renewable = revert is not None and revert.renewable
                    self.store.fail(order.id, f"the mint would revert: {why}; nothing was sent", renewable)
                except (Web3Exception, httpx.HTTPError, OSError, ValueError) as exc:
                    log.warning("mint for payment %s not sent: %s", order.id, exc)
                    self.store.fail(order.id, f"the mint could not be sent ({exc.__class__.__name__}: {exc})")

    def _send(self, order: Order) -> str:
        w3 = self.chain.w3
        quote = MintQuote(order_terms(order), order.oracle_epoch, order.max_wei)
        call = {
            "from": self.address,
            "to": self.chain.address,
            "value": quote.value_wei,
            "data": quote.calldata(bytes.fromhex(order.id)),
        }
        w3.eth.call(call)  # simulate: a revert raises ContractLogicError with the contract's error
        gas = w3.eth.estimate_gas(call)
        base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
        priority = w3.eth.max_priority_fee
        tx = {
            **call,
            "gas": gas * 12 // 10 + 10_000,
            "nonce": w3.eth.get_transaction_count(self.address, "pending"),
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": 2 * base_fee + priority,
            "chainId": w3.eth.chain_id,
        }
        tx_hash = w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        log.info("payment %s: mint sent in tx %s", order.id, tx_hash.to_0x_hex())
        return tx_hash.to_0x_hex()
