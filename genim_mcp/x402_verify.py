"""Verifying an x402 `exact` payment for one call, as its own facilitator, before anything is sent.

The SDK's types parse the payment and its own EIP-712 hash and universal signature check (EOA by recovery,
ERC-1271 for a deployed wallet) verify it against the USDC token's domain. The rest is what this server
demands of a payment for this call: the offer it accepts is exactly this call's (`UsdcRail.requirements`), the
authorization pays exactly that amount to the contract, it is valid now and long enough to settle, but not
much longer than the window, and the payer holds the USDC. The contract's own simulation comes later
(x402_settle); a refusal here means nothing was sent and nothing was charged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from web3 import Web3
from x402.mechanisms.evm.constants import (
    AUTHORIZATION_STATE_ABI,
    BALANCE_OF_ABI,
    ERR_AUTHORIZATION_VALUE_MISMATCH,
    ERR_INSUFFICIENT_BALANCE,
    ERR_INVALID_SIGNATURE,
    ERR_NETWORK_MISMATCH,
    ERR_RECIPIENT_MISMATCH,
    ERR_UNSUPPORTED_SCHEME,
    ERR_VALID_AFTER_FUTURE,
    ERR_VALID_BEFORE_EXPIRED,
)
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.types import ExactEIP3009Authorization, ExactEIP3009Payload
from x402.mechanisms.evm.verify import verify_universal_signature
from x402.schemas import PaymentPayload, PaymentRequirements

from genim_mcp.x402_terms import UsdcRail, usd_text

# A payment must stay valid this long after it is checked: time for the mint to be sent and mined (OP: 2 s
# blocks). One valid for longer than the window plus CLOCK_SKEW would outlive the call, and is refused.
SETTLE_MARGIN = 30
CLOCK_SKEW = 60
ERR_OFFER_MISMATCH = "offer_mismatch"  # the payment accepted another offer than this call's
ERR_MALFORMED = "invalid_payload"


class PaymentRefused(ValueError):
    """The payment cannot pay for this call; nothing was sent and nothing was charged."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # x402's invalid_reason vocabulary where it has a word for it


@dataclass(frozen=True)
class Authorization:
    """A verified EIP-3009 TransferWithAuthorization, ready for `mintWithAuthorization`."""

    payer: str  # checksummed
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    signature: bytes

    @property
    def nonce_hex(self) -> str:
        return "0x" + self.nonce.hex()


class ChainReader:
    """What the SDK's signature check reads from the chain (code, ERC-1271 `isValidSignature`), over our web3."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def get_code(self, address: str) -> bytes:
        return bytes(self.w3.eth.get_code(Web3.to_checksum_address(address)))

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> Any:
        contract = self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
        return getattr(contract.functions, function_name)(*args).call()


def parse_payment(raw: object) -> PaymentPayload:
    if not isinstance(raw, dict):
        raise PaymentRefused(ERR_MALFORMED, "the x402 payment in _meta is not a PaymentPayload object")
    try:
        payment = PaymentPayload.model_validate(raw)
    except ValidationError as exc:
        raise PaymentRefused(ERR_MALFORMED, f"the x402 payment is malformed: {exc.errors()[0]['msg']}") from None
    if payment.x402_version != 2:
        raise PaymentRefused(ERR_MALFORMED, f"x402 version {payment.x402_version}; this server speaks version 2")
    return payment


def check_offer(payment: PaymentPayload, offered: PaymentRequirements) -> Authorization:
    """The payment answers exactly this call's offer, and its authorization pays that amount to `payTo`."""
    accepted = payment.accepted
    if accepted.scheme != "exact" or "authorization" not in payment.payload:
        raise PaymentRefused(ERR_UNSUPPORTED_SCHEME, "only the `exact` scheme with an EIP-3009 authorization pays")
    if accepted.network != offered.network:
        raise PaymentRefused(ERR_NETWORK_MISMATCH, f"the payment is for {accepted.network}, this is {offered.network}")
    if (accepted.extra or {}).get("terms") != offered.extra["terms"]:
        raise PaymentRefused(
            ERR_OFFER_MISMATCH,
            "the payment was made for another call (other tool, aspect ratio or prompt); it cannot pay for this one",
        )
    if accepted.asset.lower() != offered.asset.lower() or accepted.pay_to.lower() != offered.pay_to.lower():
        raise PaymentRefused(ERR_OFFER_MISMATCH, "the payment accepted another asset or payee than this call's")
    try:
        parsed = ExactEIP3009Payload.from_dict(payment.payload)
        auth = parsed.authorization
        nonce = bytes.fromhex(auth.nonce.removeprefix("0x"))
        signature = bytes.fromhex((parsed.signature or "").removeprefix("0x"))
        authorization = Authorization(Web3.to_checksum_address(auth.from_address), int(auth.value),
                                      int(auth.valid_after), int(auth.valid_before), nonce, signature)  # fmt: skip
        to = Web3.to_checksum_address(auth.to)
    except (ValueError, TypeError, AttributeError) as exc:
        raise PaymentRefused(ERR_MALFORMED, f"the authorization is malformed: {exc}") from None
    if len(nonce) != 32 or not signature:
        raise PaymentRefused(ERR_MALFORMED, "the authorization needs a 32-byte nonce and a signature")
    if to != Web3.to_checksum_address(offered.pay_to):
        raise PaymentRefused(ERR_RECIPIENT_MISMATCH, f"the authorization pays {to}, not the contract {offered.pay_to}")
    if authorization.value != int(offered.amount):
        raise PaymentRefused(
            ERR_AUTHORIZATION_VALUE_MISMATCH,
            f"the authorization is for ${usd_text(authorization.value)}; this call costs "
            f"${usd_text(int(offered.amount))}",
        )
    return authorization


def check_window(auth: Authorization, chain_time: int, window: int, wall_time: float | None = None) -> None:
    """Valid now (on the chain's clock and ours), for at least SETTLE_MARGIN more, for at most window + skew."""
    wall = int(time.time() if wall_time is None else wall_time)
    now = max(chain_time, wall)
    if auth.valid_after > now:
        raise PaymentRefused(ERR_VALID_AFTER_FUTURE, f"the authorization is not valid before {auth.valid_after}")
    if auth.valid_before <= chain_time:
        raise PaymentRefused(
            ERR_VALID_BEFORE_EXPIRED,
            f"the authorization expired at {auth.valid_before} (chain time is {chain_time}); nothing was charged",
        )
    if auth.valid_before < now + SETTLE_MARGIN:
        raise PaymentRefused(
            ERR_VALID_BEFORE_EXPIRED,
            f"the authorization expires in {auth.valid_before - now} s, too soon to settle (at least "
            f"{SETTLE_MARGIN} s are needed); nothing was charged",
        )
    if auth.valid_before > wall + window + CLOCK_SKEW:
        raise PaymentRefused(
            ERR_VALID_BEFORE_EXPIRED,
            f"the authorization stays valid {auth.valid_before - wall} s from now; this server accepts at most "
            f"{window} s (the offer's maxTimeoutSeconds) so that it cannot outlive the call",
        )


def check_on_chain(reader: ChainReader, rail: UsdcRail, auth: Authorization) -> None:
    """The signature is the payer's for this token's EIP-712 domain, and the payer holds the USDC (unless this
    authorization was already executed, which only the contract's simulation can judge)."""
    message = ExactEIP3009Authorization(auth.payer, rail.contract, str(auth.value), str(auth.valid_after),
                                        str(auth.valid_before), auth.nonce_hex)  # fmt: skip
    digest = hash_eip3009_authorization(message, rail.chain_id, rail.usdc, rail.token_name, rail.token_version)
    try:
        valid, _ = verify_universal_signature(reader, auth.payer, digest, auth.signature, allow_undeployed=False)
    except ValueError:
        valid = False  # an undeployed smart wallet (ERC-6492): neither USDC nor the contract can check it
    if not valid:
        raise PaymentRefused(
            ERR_INVALID_SIGNATURE,
            f"the signature is not {auth.payer}'s for this authorization on {rail.token_name} version "
            f"{rail.token_version}; nothing was charged",
        )
    used = reader.read_contract(rail.usdc, AUTHORIZATION_STATE_ABI, "authorizationState", auth.payer, auth.nonce)
    if used:
        return
    balance = reader.read_contract(rail.usdc, BALANCE_OF_ABI, "balanceOf", auth.payer)
    if balance < auth.value:
        raise PaymentRefused(
            ERR_INSUFFICIENT_BALANCE,
            f"{auth.payer} holds ${usd_text(balance)} USDC, the price is ${usd_text(auth.value)}; nothing was charged",
        )
