"""The wallet: the only holder of the oracle's key. One transaction at a time, simulated before it is
signed, recorded in the journal before it is broadcast, and replaced with a higher fee if it is stuck."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception

from genimnft.contract import Chain
from oracle.journal import Journal, SentTx

log = logging.getLogger("genim.sender")
TEST_MNEMONIC = "test test test test test test test test test test test junk"
Account.enable_unaudited_hdwallet_features()


class AccountError(RuntimeError):
    """The oracle account cannot be loaded."""


def load_account(alias: str, passphrase_env: str) -> LocalAccount:
    """An `ape accounts` alias (keystore in Ape's data folder, passphrase from the environment), or
    `TEST::n` for Ape's n-th local test account (local chains only)."""
    if alias.startswith("TEST::"):
        index = int(alias.removeprefix("TEST::"))
        return Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    folder = Path(os.environ.get("APE_DATA_FOLDER", Path.home() / ".ape"))
    keyfile = folder / "accounts" / f"{alias}.json"
    if not keyfile.is_file():
        raise AccountError(f"no ape account '{alias}' (looked for {keyfile}); create it with `ape accounts import`")
    passphrase = os.environ.get(passphrase_env)
    if passphrase is None:
        raise AccountError(f"set {passphrase_env} to the passphrase of ape account '{alias}'")
    try:
        key = Account.decrypt(json.loads(keyfile.read_text()), passphrase)
    except ValueError as exc:
        raise AccountError(f"cannot unlock ape account '{alias}': {exc}") from exc
    return Account.from_key(key)


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

    def balance(self) -> int:
        return self.chain.w3.eth.get_balance(self.address)

    def simulate(self, token_ids: list[int], digests: list[bytes]) -> None:
        """Raises ContractLogicError with the contract's custom error if the call would revert."""
        self._call(token_ids, digests).call({"from": self.address})

    def send(self, token_ids: list[int], digests: list[bytes]) -> SentTx:
        """Signs the call, records it in the journal, then broadcasts it."""
        function = self._call(token_ids, digests)
        gas = function.estimate_gas({"from": self.address})
        nonce = self.chain.w3.eth.get_transaction_count(self.address, "pending")
        max_fee, priority_fee = self._fees()
        tx = function.build_transaction(
            {
                "from": self.address,
                "nonce": nonce,
                "gas": gas * 12 // 10 + 10_000,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": priority_fee,
                "chainId": self.chain.chain_id(),
            }
        )
        return self._sign_record_broadcast(tx, token_ids)

    def replace(self, stuck: SentTx, token_ids: list[int], digests: list[bytes]) -> SentTx:
        """The same call at the same nonce with both fees raised by at least `fee_bump_percent`."""
        bump = 100 + self.fee_bump_percent
        market_max, market_priority = self._fees()
        priority_fee = max(stuck.priority_fee * bump // 100 + 1, market_priority)
        max_fee = max(stuck.max_fee * bump // 100 + 1, market_max, priority_fee)
        function = self._call(token_ids, digests)
        tx = function.build_transaction(
            {
                "from": self.address,
                "nonce": stuck.nonce,
                "gas": function.estimate_gas({"from": self.address}) * 12 // 10 + 10_000,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": priority_fee,
                "chainId": self.chain.chain_id(),
            }
        )
        log.info("replacing tx %s (nonce %d) with fees %d/%d", stuck.hash, stuck.nonce, max_fee, priority_fee)
        return self._sign_record_broadcast(tx, token_ids)

    def rebroadcast(self, tx: SentTx) -> None:
        """Sends an already signed transaction again (after a restart); "already known" is fine."""
        self._broadcast(tx.raw)

    def outcome(self, txs: list[SentTx]) -> Outcome:
        """Whether any of the transactions sent with one nonce was mined."""
        for tx in txs:
            try:
                receipt = self.chain.w3.eth.get_transaction_receipt(tx.hash)
            except TransactionNotFound:
                continue
            return Outcome(tx.hash, True, receipt["status"] == 1, receipt["gasUsed"], receipt["blockNumber"])
        nonce = txs[0].nonce
        if self.chain.w3.eth.get_transaction_count(self.address, "latest") > nonce:
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

    def _fees(self) -> tuple[int, int]:
        w3 = self.chain.w3
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
        try:
            priority_fee = w3.eth.max_priority_fee
        except (Web3Exception, ValueError):
            priority_fee = 1_000_000  # 0.001 gwei, typical on OP-stack chains
        return 2 * base_fee + priority_fee, priority_fee

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
        self._broadcast(sent.raw)
        return sent

    def _broadcast(self, raw: bytes) -> None:
        try:
            self.chain.w3.eth.send_raw_transaction(raw)
        except (Web3Exception, ValueError) as exc:
            message = str(exc).lower()
            if "already known" in message or "nonce too low" in message or "already imported" in message:
                return
            raise


__all__ = ["AccountError", "ContractLogicError", "Outcome", "Sender", "load_account"]
