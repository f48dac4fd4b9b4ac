"""Signs and sends transactions from local accounts on a dev chain, failing loudly on a revert."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt


def send(w3: Web3, account: LocalAccount, call: Any, value: int = 0) -> TxReceipt:
    """Sends `call` (a contract function call or constructor) from `account`, waits for it, raises if it reverted.

    web3 estimates gas first, so a call that would revert raises `ContractLogicError` with its reason here."""
    tx = call.build_transaction(
        {"from": account.address, "value": value, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {receipt['transactionHash'].hex()} reverted")
    return receipt


def deploy(w3: Web3, account: LocalAccount, abi: list[dict[str, Any]], bytecode: str, *args: Any) -> Contract:
    """Deploys `bytecode` with constructor `args` from `account`; returns the contract at its address."""
    receipt = send(w3, account, w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args))
    return w3.eth.contract(address=receipt["contractAddress"], abi=abi)
