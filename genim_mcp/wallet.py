"""Local mode's wallet: the buyer's own key sends each payment's mint, one at a time, from a background thread.

The caps are enforced when the payment is recorded (`Store.create_order`), before anything reaches this queue.
Each mint names the order's oracle epoch and sends the order's `max_wei` (the price plus the rate margin; the
contract returns what it does not charge). It is simulated first: a revert fails the payment with the contract's
error, in words, and sends nothing. A mint that reverts once mined is caught by the follower.

The mint's hash is recorded before it is broadcast. When the node's answer to the broadcast is lost, the payment
is `unknown` (counted as spent, never reported as failed) until the hash or the account's nonce settles it: the
node has the transaction (it then settles through its event), or that nonce went to another transaction (nothing
was charged); meanwhile the same signed transaction is broadcast again.
"""

from __future__ import annotations

import logging
import queue
import threading

import httpx
from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception, Web3RPCError

from genim_mcp.calldata import MintQuote
from genim_mcp.follower import exit_on_crash
from genim_mcp.reverts import revert_of
from genim_mcp.store import Order, Store
from genim_mcp.terms import order_terms
from genimnft.contract import Chain

log = logging.getLogger("genim.mcp.wallet")
NETWORK_ERRORS = (Web3Exception, httpx.HTTPError, OSError, ValueError)
RESOLVE_EVERY = 0.5  # seconds between looks at an unknown send


class LocalWallet:
    def __init__(self, chain: Chain, store: Store, account: LocalAccount, resolve_every: float = RESOLVE_EVERY) -> None:
        self.resolve_every = resolve_every
        self.chain = chain
        self.store = store
        self.account = account
        self.address = account.address
        self._queue: queue.Queue[Order | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="genim-mcp-wallet", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
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
                    signed, nonce = self._sign(order)
                except ContractLogicError as exc:
                    revert = revert_of(exc)
                    why = revert.explain() if revert else str(exc)
                    renewable = revert is not None and revert.renewable
                    self.store.fail(order.id, f"the mint would revert: {why}; nothing was sent", renewable)
                    continue
                except NETWORK_ERRORS as exc:
                    log.warning("mint for payment %s not sent: %s", order.id, exc)
                    self.store.fail(order.id, f"the mint could not be prepared, nothing was sent ({exc})")
                    continue
                self._broadcast(order, signed, nonce)

    def _broadcast(self, order: Order, signed: SignedTransaction, nonce: int) -> None:
        tx_hash = signed.hash.to_0x_hex()
        self.store.mint_sent(order.id, tx_hash)  # before the broadcast: the hash is what resolves a lost answer
        try:
            self.chain.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:  # the node answered: it did not take the transaction
            self.store.fail(order.id, f"the node refused the mint ({exc}); nothing was charged")
            return
        except NETWORK_ERRORS as exc:
            log.warning("payment %s: the node's answer to mint %s was lost (%s); resolving it", order.id, tx_hash, exc)
            self.store.send_unknown(order.id, tx_hash)
            self._resolve(order, signed, nonce)
            return
        log.info("payment %s: mint sent in tx %s", order.id, tx_hash)

    def _resolve(self, order: Order, signed: SignedTransaction, nonce: int) -> None:
        """Until the node has the mint (it settles through its event) or its nonce went to another transaction
        (nothing was charged), broadcasting the same signed transaction again."""
        w3, tx_hash = self.chain.w3, signed.hash
        while not self._stopping.wait(self.resolve_every):
            try:
                used = w3.eth.get_transaction_count(self.address, "latest")
                try:
                    w3.eth.get_transaction(tx_hash)
                except TransactionNotFound:
                    if used > nonce:
                        self.store.fail(
                            order.id,
                            f"the mint in tx {tx_hash.to_0x_hex()} was never mined: its nonce {nonce} went to another "
                            "transaction of this account; nothing was charged",
                        )
                        return
                    w3.eth.send_raw_transaction(signed.raw_transaction)
                    continue
                self.store.send_known(order.id)
                log.info("payment %s: the node has mint %s", order.id, tx_hash.to_0x_hex())
                return
            except NETWORK_ERRORS as exc:
                log.info("payment %s: mint %s still unresolved (%s)", order.id, tx_hash.to_0x_hex(), exc)

    def _sign(self, order: Order) -> tuple[SignedTransaction, int]:
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
        nonce = w3.eth.get_transaction_count(self.address, "pending")
        tx = {
            **call,
            "gas": gas * 12 // 10 + 10_000,
            "nonce": nonce,
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": 2 * base_fee + priority,
            "chainId": w3.eth.chain_id,
        }
        return self.account.sign_transaction(tx), nonce
