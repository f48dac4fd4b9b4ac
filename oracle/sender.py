"""The wallet: the only holder of the oracle's key. One transaction at a time, simulated before it is
signed, recorded in the journal before it is broadcast, and replaced with a higher fee if it is stuck."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception

from genimnft.accounts import AccountError, load_account
from genimnft.contract import Chain
from oracle.journal import Journal, SentTx

log = logging.getLogger("genim.sender")
MIN_REPLACEMENT_BUMP_PERCENT = 10  # nodes refuse a same-nonce replacement that raises either fee by less


class InsufficientFunds(RuntimeError):
    """The account cannot pay for the transaction's gas: nothing was signed (or the node refused it)."""

    def __init__(self, needed: int, balance: int) -> None:
        super().__init__(f"the oracle account needs {needed} wei for gas and holds {balance} wei")
        self.needed = needed
        self.balance = balance


class FeeCapReached(RuntimeError):
    """The fee the transaction needs is above `max_fee_per_gas`: nothing was signed."""


@dataclass(frozen=True)
class Outcome:
    """How a sent transaction ended: mined (success or revert), or still unknown."""

    tx_hash: str | None
    mined: bool
    success: bool
    gas_used: int = 0
    block_number: int = 0


class Sender:
    def __init__(self, chain: Chain, journal: Journal, account: LocalAccount, fee_bump_percent: int = 25) -> None:
        self.chain = chain
        self.journal = journal
        self.account = account
        self.address = account.address
        self.fee_bump_percent = fee_bump_percent
        self.last_gas_per_token = 65_000  # a lone setImage, until a batch is estimated

    def balance(self) -> int:
        return self.chain.w3.eth.get_balance(self.address)

    def simulate(self, token_ids: list[int], digests: list[bytes]) -> None:
        """Raises ContractLogicError with the contract's custom error if the call would revert."""
        self._call(token_ids, digests).call({"from": self.address})

    def mempool_nonces(self) -> int:
        """How many of this account's transactions wait in the node's pool (pending nonce less latest)."""
        eth = self.chain.w3.eth
        return max(0, eth.get_transaction_count(self.address, "pending") - eth.get_transaction_count(self.address))

    def send(self, token_ids: list[int], digests: list[bytes], fee_cap: int) -> SentTx:
        """Signs the call, records it in the journal, then broadcasts it; raises FeeCapReached or
        InsufficientFunds, having signed nothing, when the fee it needs is above `fee_cap` or unaffordable."""
        max_fee, priority_fee = self._fees()
        max_fee = min(max_fee, fee_cap)
        if max_fee < self._base_fee() + priority_fee:
            raise FeeCapReached(f"the base fee is above max_fee_per_gas {fee_cap} wei")
        # A node that lags may answer an old nonce: the journal's next one is the least it can be.
        nonce = max(self.chain.w3.eth.get_transaction_count(self.address, "pending"), self.journal.next_nonce())
        return self._build_sign_broadcast(token_ids, digests, nonce, max_fee, priority_fee)

    def replace(self, stuck: SentTx, token_ids: list[int], digests: list[bytes], fee_cap: int) -> SentTx:
        """The same call at the same nonce with both fees raised by `fee_bump_percent` (at least the 10% nodes
        require), never above `fee_cap`: raises FeeCapReached or InsufficientFunds, signing nothing."""
        bump = 100 + self.fee_bump_percent
        market_max, market_priority = self._fees()
        priority_fee = max(stuck.priority_fee * bump // 100 + 1, market_priority)
        max_fee = min(max(stuck.max_fee * bump // 100 + 1, market_max, priority_fee), fee_cap)
        least = 100 + MIN_REPLACEMENT_BUMP_PERCENT
        if max_fee < stuck.max_fee * least // 100 + 1 or max_fee < priority_fee:
            raise FeeCapReached(f"replacing tx {stuck.hash} would pass max_fee_per_gas {fee_cap} wei")
        log.info("replacing tx %s (nonce %d) with fees %d/%d", stuck.hash, stuck.nonce, max_fee, priority_fee)
        return self._build_sign_broadcast(token_ids, digests, stuck.nonce, max_fee, priority_fee)

    def batch_cost(self, tokens: int, fee_cap: int) -> int:
        """Wei for the gas of a batch of `tokens` at today's fees (per-token gas of the last estimate)."""
        return self.last_gas_per_token * tokens * min(self._fees()[0], fee_cap)

    def _build_sign_broadcast(
        self, token_ids: list[int], digests: list[bytes], nonce: int, max_fee: int, priority_fee: int
    ) -> SentTx:
        function = self._call(token_ids, digests)
        gas = function.estimate_gas({"from": self.address}) * 12 // 10 + 10_000
        self.last_gas_per_token = gas // len(token_ids)
        balance = self.balance()
        if balance < gas * max_fee:
            raise InsufficientFunds(gas * max_fee, balance)
        tx = function.build_transaction(
            {
                "from": self.address,
                "nonce": nonce,
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": priority_fee,
                "chainId": self.chain.chain_id(),
            }
        )
        return self._sign_record_broadcast(tx, token_ids)

    def rebroadcast(self, tx: SentTx) -> None:
        """Sends an already signed transaction again (after a restart); "already known" is fine."""
        self._broadcast(tx)

    def outcome(self, txs: list[SentTx]) -> Outcome:
        """Whether any of the transactions sent with one nonce was mined. The receipts and the account's mined
        nonce come in one JSON-RPC batch, so one node answers both: a node that lags behind the one that mined
        the transaction cannot make it look dropped."""
        calls = [("eth_getTransactionReceipt", [tx.hash]) for tx in txs]
        *receipts, mined_nonce = self.chain.batch([*calls, ("eth_getTransactionCount", [self.address, "latest"])])
        for tx, receipt in zip(txs, receipts, strict=True):
            if receipt:
                status, gas_used, block = (int(receipt[key], 16) for key in ("status", "gasUsed", "blockNumber"))
                return Outcome(tx.hash, True, status == 1, gas_used, block)
        if int(mined_nonce, 16) > txs[0].nonce:
            # The nonce was used, by none of ours that we can still see: dropped by a reorg and replaced.
            return Outcome(None, True, False)
        return Outcome(None, False, False)

    def known(self, txs: list[SentTx]) -> bool:
        """Whether the node still has any of these transactions (mined or in its pool)."""
        for tx in txs:
            try:
                if self.chain.w3.eth.get_transaction(tx.hash) is not None:
                    return True
            except TransactionNotFound:
                continue
        return False

    def _call(self, token_ids: list[int], digests: list[bytes]):  # noqa: ANN202 (web3 ContractFunction)
        functions = self.chain.contract.functions
        if len(token_ids) == 1:
            return functions.setImage(token_ids[0], digests[0])
        return functions.setImages(token_ids, digests)

    def _base_fee(self) -> int:
        return self.chain.w3.eth.get_block("latest").get("baseFeePerGas", 0)

    def _fees(self) -> tuple[int, int]:
        try:
            priority_fee = self.chain.w3.eth.max_priority_fee
        except (Web3Exception, ValueError):
            priority_fee = 1_000_000  # 0.001 gwei, typical on OP-stack chains
        return 2 * self._base_fee() + priority_fee, priority_fee

    def _sign_record_broadcast(self, tx: dict, token_ids: list[int]) -> SentTx:
        signed = self.account.sign_transaction(tx)
        sent = SentTx(
            hash="0x" + signed.hash.hex().removeprefix("0x"),
            nonce=tx["nonce"],
            raw=bytes(signed.raw_transaction),
            token_ids=token_ids,
            max_fee=tx["maxFeePerGas"],
            priority_fee=tx["maxPriorityFeePerGas"],
            sent_at=time.time(),
        )
        self.journal.record_tx(sent)
        self._broadcast(sent, gas=tx["gas"])
        return sent

    def _broadcast(self, tx: SentTx, gas: int | None = None) -> None:
        try:
            self.chain.w3.eth.send_raw_transaction(tx.raw)
        except (Web3Exception, ValueError) as exc:
            message = str(exc).lower()
            if "already known" in message or "nonce too low" in message or "already imported" in message:
                return
            if "insufficient funds" in message:  # the balance fell between our check and the node's
                gas = gas or self.last_gas_per_token * len(tx.token_ids)
                raise InsufficientFunds(gas * tx.max_fee, self.balance()) from exc
            raise


__all__ = [
    "AccountError",
    "ContractLogicError",
    "FeeCapReached",
    "InsufficientFunds",
    "Outcome",
    "Sender",
    "load_account",
]
