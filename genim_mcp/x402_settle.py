"""Settling a verified x402 payment: the server's relayer sends `mintWithAuthorization` with this call's prompt,
tier and aspect ratio, and waits until it is mined. The relayer pays the gas, never the buyer, and holds only gas
money: the USDC goes from the buyer straight into the token's escrow inside the mint.

Every outcome is one the agent can be told truthfully:
- refused before sending (the contract's simulation reverts; the relayer cannot pay the gas): nothing was sent,
  the authorization is left unused, and this server never submits it later;
- settled: the token is the payer's and the USDC is in its escrow;
- reverted: the mint took nothing (a reverted transaction moves no USDC); the authorization was not used by it;
- lost: the transaction is gone from the node; it is broadcast again (same bytes), or re-signed with a new relayer
  nonce if that nonce went to another transaction, for as long as the authorization is valid; once it has
  expired unused on USDC, nothing was charged.
Blocking (web3) throughout: the tool runs these in a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxReceipt
from x402.mechanisms.evm.constants import AUTHORIZATION_STATE_ABI

from genim_mcp.reverts import revert_of
from genim_mcp.terms import ImageTerms
from genim_mcp.x402_ledger import Ledger, Payment
from genim_mcp.x402_terms import UsdcRail
from genim_mcp.x402_verify import Authorization
from genimnft.contract import Chain

log = logging.getLogger("genim.mcp.x402")
REBROADCAST_EVERY = 4.0  # seconds without a receipt before the same signed transaction is broadcast again
GAS_HEADROOM = (12, 10, 10_000)  # gas limit = estimate * 12 / 10 + 10k, as the local wallet's mints
MAX_SENDS = 5  # transactions for one payment at most: replacements of lost ones, one retry after a revert


class NotSettled(RuntimeError):
    """The payment did not settle, and nothing was charged: the reason says why, in words for the agent."""

    def __init__(self, reason: str, message: str, tx: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason  # x402 errorReason
        self.tx = tx


@dataclass(frozen=True)
class Settled:
    tx: str
    token_id: int
    block: int


class Relayer:
    """The one account that sends settlements, one nonce at a time for all calls."""

    def __init__(self, chain: Chain, rail: UsdcRail, account: LocalAccount, ledger: Ledger, poll: float) -> None:
        self.chain = chain
        self.w3: Web3 = chain.w3
        self.rail = rail
        self.account = account
        self.ledger = ledger
        self.poll = poll
        self._nonce_lock = threading.Lock()
        self._next_nonce: int | None = None
        self._usdc = self.w3.eth.contract(address=Web3.to_checksum_address(rail.usdc), abi=AUTHORIZATION_STATE_ABI)

    @property
    def address(self) -> str:
        return self.account.address

    # -- one payment, start to end ----------------------------------------------------------------------

    def settle(self, payment: Payment, terms: ImageTerms, auth: Authorization) -> Settled:
        """Simulates, sends and waits; NotSettled (with the ledger updated) if the payment did not settle."""
        tx_hash, raw = self._send(payment, self._simulated(payment, terms, auth))
        reverted_once = False
        for _attempt in range(MAX_SENDS):
            receipt = self._wait(payment, auth, tx_hash, raw)
            if receipt is None:  # it can never be mined (its relayer nonce went to another transaction), or it
                # vanished after someone else executed the authorization: the USDC waits in the contract
                log.warning("x402 mint %s cannot be mined; simulating it again", tx_hash)
                tx_hash, raw = self._send(payment, self._simulated(payment, terms, auth))
                continue
            if receipt["status"] == 1:
                return self._settled(payment, receipt)
            why = self._revert_reason(tx_hash, receipt)
            if reverted_once:
                break
            # What changed since the simulation (the oracle set, a pause; or someone executed the authorization
            # on USDC, which the contract accepts as payment) may allow a fresh mint now: one more try.
            log.warning("x402 mint %s reverted (%s); simulating it again", tx_hash, why)
            reverted_once = True
            tx_hash, raw = self._send(payment, self._simulated(payment, terms, auth, reverted=(tx_hash, why)))
        else:
            why = f"no receipt after {MAX_SENDS} transactions"
        self.ledger.reverted(payment, tx_hash, why)
        raise NotSettled(
            "transaction_failed", f"the mint reverted in tx {tx_hash} ({why}); {self._charged(auth)}", tx_hash
        )

    def _charged(self, auth: Authorization) -> str:
        """Whether the buyer paid, as USDC itself says: a reverted mint moves no USDC."""
        if not self._authorization_used(auth):
            return "your authorization is unused on USDC, so nothing was charged; this server will not submit it again"
        return (
            "this server's transaction moved no USDC, but USDC marks your authorization used or cancelled by another "
            "transaction (check your USDC balance and the AuthorizationUsed/AuthorizationCanceled events)"
        )

    def _simulated(
        self, payment: Payment, terms: ImageTerms, auth: Authorization, reverted: tuple[str, str] | None = None
    ) -> ContractFunction:
        """The mint as this call's terms and the current oracle epoch make it, if the contract accepts it now."""
        call = self.chain.contract.functions.mintWithAuthorization(
            terms.prompt, terms.tier, int(terms.aspect), self.chain.contract.functions.oracleEpoch().call(),
            auth.payer, auth.valid_after, auth.valid_before, auth.nonce, auth.signature,
        )  # fmt: skip
        try:
            call.call({"from": self.address})
        except ContractLogicError as exc:
            why = _why(exc)
            if reverted is not None:
                tx_hash, first = reverted
                self.ledger.reverted(payment, tx_hash, first)
                raise NotSettled(
                    "transaction_failed",
                    f"the mint reverted in tx {tx_hash} ({first}) and would revert again now ({why}); "
                    f"{self._charged(auth)}",
                    tx_hash,
                ) from None
            self.ledger.unused(payment, f"the contract refuses the mint: {why}")
            raise NotSettled(
                "invalid_exact_evm_transaction_simulation_failed",
                f"the contract refuses this mint ({why}); nothing was sent and nothing was charged",
            ) from None
        return call

    def _send(self, payment: Payment, call: ContractFunction) -> tuple[str, str]:
        """Signs with the next relayer nonce, records the transaction, then broadcasts it."""
        w3 = self.w3
        gas = call.estimate_gas({"from": self.address})
        gas = gas * GAS_HEADROOM[0] // GAS_HEADROOM[1] + GAS_HEADROOM[2]
        priority = w3.eth.max_priority_fee
        max_fee = 2 * w3.eth.get_block("latest")["baseFeePerGas"] + priority
        balance = w3.eth.get_balance(self.address)
        if balance < gas * max_fee:
            self._out_of_gas(payment, balance, gas * max_fee)
        with self._nonce_lock:
            nonce = max(self._next_nonce or 0, w3.eth.get_transaction_count(self.address, "pending"))
            fields = {"from": self.address, "nonce": nonce, "gas": gas, "chainId": self.rail.chain_id,
                      "maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority}  # fmt: skip
            tx = call.build_transaction(fields)  # type: ignore[arg-type]
            signed = self.account.sign_transaction(tx)
            tx_hash, raw = signed.hash.to_0x_hex(), signed.raw_transaction.to_0x_hex()
            self.ledger.sending(payment, tx_hash, raw)
            try:
                w3.eth.send_raw_transaction(raw)
            except Web3RPCError as exc:
                self._next_nonce = None
                if "insufficient funds" in str(exc).lower():
                    self._out_of_gas(payment, w3.eth.get_balance(self.address), gas * max_fee)
                self.ledger.unused(payment, f"the node refused the mint: {exc}")
                raise NotSettled(
                    "transaction_failed",
                    f"the node refused this server's mint ({exc}); it was never sent and nothing was charged",
                ) from None
            self._next_nonce = nonce + 1
        log.info("x402 payment %s/%s: mint sent in tx %s", payment.payer, payment.nonce, tx_hash)
        return tx_hash, raw

    def _out_of_gas(self, payment: Payment, balance: int, needed: int) -> None:
        message = (
            f"the seller's relayer {self.address} has {Web3.from_wei(balance, 'ether'):f} ETH and the mint needs up "
            f"to {Web3.from_wei(needed, 'ether'):f} ETH of gas"
        )
        log.error("x402 relayer out of gas money: %s", message)
        self.ledger.unused(payment, message)
        raise NotSettled(
            "insufficient_funds",
            f"{message}: your authorization was not submitted, stays unused and nothing was charged. Try again later",
        )

    def _wait(self, payment: Payment, auth: Authorization, tx_hash: str, raw: str) -> TxReceipt | None:
        """The receipt of `tx_hash`. None if it can no longer pay but the authorization still can: its relayer nonce
        went to another transaction, or someone else executed the authorization on USDC (the contract accepts that
        as payment). NotSettled once no block can execute the authorization any more: the latest block is at or
        past `validBefore` (later ones never go back) and USDC has it unused, so nothing was charged."""
        last_broadcast = time.monotonic()
        while True:
            if (receipt := self._receipt(tx_hash)) is not None:
                return receipt
            replaced = False
            if time.monotonic() - last_broadcast >= REBROADCAST_EVERY:
                last_broadcast = time.monotonic()
                replaced = not self._rebroadcast(raw)
            expired = self._expired(auth)
            if replaced or expired:
                used = self._authorization_used(auth)
                if (receipt := self._receipt(tx_hash)) is not None:  # mined in between
                    return receipt
                if used or not expired:
                    return None
                reason = f"the mint tx {tx_hash} was not mined before the authorization expired at {auth.valid_before}"
                self.ledger.expired(payment, reason)
                raise NotSettled("settlement_lost", f"{reason}; USDC has it unused: nothing was charged", tx_hash)
            time.sleep(self.poll)

    def _receipt(self, tx_hash: str) -> TxReceipt | None:
        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def _rebroadcast(self, raw: str) -> bool:
        """Sends the same signed bytes again (a node that dropped them takes them back); False if their relayer
        nonce is used by another transaction, so they can never be mined."""
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "nonce too low" in text or "nonce is too low" in text:
                return False
            # "already known", or anything transient: the next rebroadcast or receipt poll settles it
        return True

    def _expired(self, auth: Authorization) -> bool:
        """No block from now on can execute the authorization: the latest block is at or past `validBefore`."""
        return self.w3.eth.get_block("latest")["timestamp"] >= auth.valid_before

    def _authorization_used(self, auth: Authorization) -> bool:
        return self._usdc.functions.authorizationState(auth.payer, auth.nonce).call()

    def _revert_reason(self, tx_hash: str, receipt: TxReceipt) -> str:
        """Why a mined mint reverted: it is called again on the state at the end of its block."""
        tx = self.w3.eth.get_transaction(HexBytes(tx_hash))
        call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]}
        try:
            self.w3.eth.call(call, receipt["blockNumber"])  # type: ignore[arg-type]
        except ContractLogicError as exc:
            return _why(exc)
        return "no reason given"

    def _settled(self, payment: Payment, receipt: TxReceipt) -> Settled:
        [event] = self.chain.contract.events.ImageRequested().process_receipt(receipt, errors=DISCARD)
        tx_hash = receipt["transactionHash"].to_0x_hex()
        token_id = event["args"]["tokenId"]
        self.ledger.settled(payment, tx_hash, token_id)
        return Settled(tx_hash, token_id, receipt["blockNumber"])

    # -- after a restart ----------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Records the outcome of every payment whose mint was sent before a restart (its call is gone; the
        token, if it was minted, is the payer's and `get_image` answers for it)."""
        for payment in self.ledger.in_flight():
            assert payment.tx is not None
            try:
                receipt = self.w3.eth.get_transaction_receipt(HexBytes(payment.tx))
            except TransactionNotFound:
                nonce = bytes.fromhex(payment.nonce.removeprefix("0x"))
                if self.w3.eth.get_block("latest")["timestamp"] >= payment.valid_before and not (
                    self._usdc.functions.authorizationState(Web3.to_checksum_address(payment.payer), nonce).call()
                ):
                    self.ledger.expired(payment, f"the mint tx {payment.tx} was never mined")
                continue
            if receipt["status"] == 1:
                self._settled(payment, receipt)
            else:
                self.ledger.reverted(payment, payment.tx, self._revert_reason(payment.tx, receipt))


def _why(exc: ContractLogicError) -> str:
    """The contract's custom error in words, or the token's own message (USDC reverts with strings)."""
    revert = revert_of(exc)
    return revert.explain() if revert else (exc.message or str(exc))
