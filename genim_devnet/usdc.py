"""Circle's real USDC (FiatTokenV2_2 behind FiatTokenProxy, npm artifacts) on a dev chain, and EIP-3009 signatures."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from genim_devnet.localnet import ROOT
from genim_devnet.txn import deploy, send

ARTIFACTS = ROOT / ".cache/vendor/stablecoin-evm/artifacts/hardhat/contracts"  # toolchain/vendor.sh unpacks them
FIAT_TOKEN = "v2/FiatTokenV2_2.sol/FiatTokenV2_2.json"
PROXY = "v1/FiatTokenProxy.sol/FiatTokenProxy.json"
SIGNATURE_CHECKER = "util/SignatureChecker.sol/SignatureChecker.json"
NAME, SYMBOL, CURRENCY, DECIMALS, VERSION = "USD Coin", "USDC", "USD", 6, "2"
THROWAWAY = "0x0000000000000000000000000000000000000001"  # Circle locks the implementation with these roles
_TRANSFER = [("from", "address"), ("to", "address"), ("value", "uint256"), ("validAfter", "uint256"),
             ("validBefore", "uint256"), ("nonce", "bytes32")]  # fmt: skip


@cache
def artifact(path: str) -> dict[str, Any]:
    """A hardhat artifact (abi, bytecode, linkReferences) of Circle's stablecoin-evm package."""
    return json.loads((ARTIFACTS / path).read_text())


def linked_bytecode(art: dict[str, Any], libraries: dict[str, str]) -> str:
    """`art`'s creation bytecode with each library address (by name) written at its `linkReferences` offsets."""
    code = art["bytecode"].removeprefix("0x")
    for source, names in art["linkReferences"].items():
        for name, refs in names.items():
            placeholder = "__$" + keccak(text=f"{source}:{name}").hex()[:34] + "$__"  # solc's, as hardhat keeps it
            address = libraries[name].removeprefix("0x").lower()
            for ref in refs:
                at, end = 2 * ref["start"], 2 * (ref["start"] + ref["length"])
                if code[at:end] != placeholder:
                    raise ValueError(f"no {name} placeholder at byte {ref['start']}")
                code = code[:at] + address + code[end:]
    return "0x" + code


@dataclass(frozen=True)
class Usdc:
    """USDC deployed Circle's way: `token` is FiatTokenV2_2's ABI at the proxy `address`; the rest are its roles."""

    address: ChecksumAddress
    abi: list[dict[str, Any]]
    token: Contract
    implementation: ChecksumAddress
    admin: LocalAccount  # the proxy's admin: may upgrade, may not call token functions
    owner: LocalAccount
    master_minter: LocalAccount
    pauser: LocalAccount
    blacklister: LocalAccount
    minter: LocalAccount

    @property
    def w3(self) -> Web3:
        return self.token.w3

    def mint(self, to: str, amount: int) -> TxReceipt:
        """Mints `amount` base units (6 decimals) to `to` from the minter."""
        return send(self.w3, self.minter, self.token.functions.mint(to, amount))

    def balance_of(self, account: str) -> int:
        return self.token.functions.balanceOf(account).call()


def deploy_usdc(
    w3: Web3,
    admin: LocalAccount,
    owner: LocalAccount,
    *,
    master_minter: LocalAccount | None = None,
    pauser: LocalAccount | None = None,
    blacklister: LocalAccount | None = None,
    minter: LocalAccount | None = None,
    lost_and_found: str | None = None,
    minter_allowance: int = 2**255 - 1,
) -> Usdc:
    """Deploys USDC as Circle's `deploy-fiat-token.s.sol` does. Roles not given default to `owner`, and
    `lost_and_found` to the owner's address; `admin` must differ from every other role (the proxy forbids it)."""
    master_minter, pauser = master_minter or owner, pauser or owner
    blacklister, minter = blacklister or owner, minter or owner
    if admin.address in {a.address for a in (owner, master_minter, pauser, blacklister, minter)}:
        raise ValueError("the proxy admin cannot call the token: give it no other role")
    fiat = artifact(FIAT_TOKEN)
    checker = deploy(w3, owner, artifact(SIGNATURE_CHECKER)["abi"], artifact(SIGNATURE_CHECKER)["bytecode"])
    impl = deploy(w3, owner, fiat["abi"], linked_bytecode(fiat, {"SignatureChecker": checker.address}))
    _initialize(impl, owner, ("", "", "", 0, THROWAWAY, THROWAWAY, THROWAWAY, THROWAWAY), THROWAWAY, "")
    proxy = deploy(w3, admin, artifact(PROXY)["abi"], artifact(PROXY)["bytecode"], impl.address)
    token = w3.eth.contract(address=proxy.address, abi=fiat["abi"])
    roles = (master_minter.address, pauser.address, blacklister.address, owner.address)
    _initialize(token, owner, (NAME, SYMBOL, CURRENCY, DECIMALS, *roles), lost_and_found or owner.address, SYMBOL)
    send(w3, master_minter, token.functions.configureMinter(minter.address, minter_allowance))
    return Usdc(proxy.address, fiat["abi"], token, impl.address, admin, owner, master_minter, pauser, blacklister,
                minter)  # fmt: skip


def _initialize(token: Contract, sender: LocalAccount, v1: tuple[Any, ...], lost_and_found: str, symbol: str) -> None:
    """Circle's four initialisers in order: V1 (name, symbol, currency, decimals, master minter, pauser,
    blacklister, owner), V2 (the name again), V2_1 (lost and found), V2_2 (no accounts to migrate, the symbol)."""
    send(token.w3, sender, token.functions.initialize(*v1))
    send(token.w3, sender, token.functions.initializeV2(v1[0]))
    send(token.w3, sender, token.functions.initializeV2_1(lost_and_found))
    send(token.w3, sender, token.functions.initializeV2_2([], symbol))


class Signature(NamedTuple):
    """One EIP-712 signature, split for the `v,r,s` overloads and packed r||s||v for the `bytes` ones."""

    v: int
    r: bytes
    s: bytes
    signature: bytes


def random_nonce() -> bytes:
    """A fresh 32-byte EIP-3009 nonce (the token keeps used nonces per authorizer, in any order)."""
    return os.urandom(32)


def _sign(
    account: LocalAccount,
    token: str,
    chain_id: int,
    primary: str,
    fields: list[tuple[str, str]],
    message: dict[str, Any],
    name: str,
) -> Signature:
    domain = {"name": name, "version": VERSION, "chainId": chain_id, "verifyingContract": token}
    types = {primary: [{"name": n, "type": t} for n, t in fields]}
    signed = account.sign_message(encode_typed_data(domain, types, message))
    r, s = signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
    return Signature(signed.v, r, s, r + s + bytes([signed.v]))


def sign_transfer_authorization(
    account: LocalAccount,
    token_address: str,
    chain_id: int,
    to: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
    name: str = NAME,
) -> Signature:
    """EIP-3009 TransferWithAuthorization from `account` (what x402's `exact` scheme signs), for either overload of
    `transferWithAuthorization` on the token at `token_address` (domain: name, version "2", chain id, proxy)."""
    message = {"from": account.address, "to": to, "value": value, "validAfter": valid_after,
               "validBefore": valid_before, "nonce": nonce}  # fmt: skip
    return _sign(account, token_address, chain_id, "TransferWithAuthorization", _TRANSFER, message, name)


def sign_receive_authorization(
    account: LocalAccount,
    token_address: str,
    chain_id: int,
    to: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
    name: str = NAME,
) -> Signature:
    """EIP-3009 ReceiveWithAuthorization: same fields, but only `to` may submit it (`receiveWithAuthorization`)."""
    message = {"from": account.address, "to": to, "value": value, "validAfter": valid_after,
               "validBefore": valid_before, "nonce": nonce}  # fmt: skip
    return _sign(account, token_address, chain_id, "ReceiveWithAuthorization", _TRANSFER, message, name)


def sign_cancel_authorization(
    account: LocalAccount, token_address: str, chain_id: int, nonce: bytes, name: str = NAME
) -> Signature:
    """EIP-3009 CancelAuthorization: lets anyone send `cancelAuthorization(account, nonce, ...)`, burning `nonce`."""
    message = {"authorizer": account.address, "nonce": nonce}
    fields = [("authorizer", "address"), ("nonce", "bytes32")]
    return _sign(account, token_address, chain_id, "CancelAuthorization", fields, message, name)
