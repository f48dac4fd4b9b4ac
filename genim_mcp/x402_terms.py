"""What an x402 payment for one call must be, and the answers that say so (x402 v2, MCP transport).

One priced call is offered as one `exact` EVM requirement: an EIP-3009 `transferWithAuthorization` of exactly
`price(tier)` USDC to the GenImNFT contract (`payTo`), which pulls it into that token's escrow inside
`mintWithAuthorization`. `maxTimeoutSeconds` is the window: the x402 client signs `validBefore` = now + window,
and waits that long for the paid call's answer. `extra` carries the token's EIP-712 domain (name, version) the
client signs with, `paymentFlow: "upfront"` (the server settles, i.e. mints, before the tool's work) and `terms`,
a digest of this call's tier, aspect ratio and on-chain prompt: a payment made for one call names that call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from mcp.types import CallToolResult, TextContent
from x402.mcp import MCP_PAYMENT_RESPONSE_META_KEY
from x402.schemas import PaymentRequired, PaymentRequirements, ResourceInfo, SettleResponse

from genim_mcp.terms import ImageTerms

USDC_DECIMALS = 6


@dataclass(frozen=True)
class UsdcRail:
    """The chain's side of every x402 offer: where the USDC goes and how the buyer signs for it."""

    chain_id: int
    contract: str  # GenImNFT: payTo, and the `to` of every authorization
    usdc: str  # the asset
    token_name: str  # the USDC token's EIP-712 domain, read from the token ("USD Coin", "2" for Circle's)
    token_version: str
    window: int  # maxTimeoutSeconds

    @property
    def network(self) -> str:
        return f"eip155:{self.chain_id}"

    def terms_digest(self, terms: ImageTerms) -> str:
        """Names one call's terms on this chain and contract (what `extra.terms` of its offer carries)."""
        encoded = encode(["uint256", "address", "uint8", "uint8", "string"],
                         [self.chain_id, self.contract, terms.tier, int(terms.aspect), terms.prompt])  # fmt: skip
        return "0x" + keccak(encoded).hex()

    def requirements(self, terms: ImageTerms, amount: int) -> PaymentRequirements:
        """The one way this call can be paid: `amount` USDC units (the tier's price) to the contract."""
        return PaymentRequirements(
            scheme="exact",
            network=self.network,
            asset=self.usdc,
            amount=str(amount),
            pay_to=self.contract,
            max_timeout_seconds=self.window,
            extra={
                "name": self.token_name,
                "version": self.token_version,
                "paymentFlow": "upfront",
                "terms": self.terms_digest(terms),
            },
        )


def usd_text(amount: int) -> str:
    """USDC base units as dollars: 300000 -> "0.30"."""
    return f"{Decimal(amount) / 10**USDC_DECIMALS:.2f}"


def resource(terms: ImageTerms) -> ResourceInfo:
    return ResourceInfo(
        url=f"mcp://tool/generate_image_{terms.tier_name}",
        description=f"one {terms.tier_name} GenImNFT image of: {terms.prompt}",
        mime_type="image/png",
    )


def payment_required(rail: UsdcRail, terms: ImageTerms, amount: int, error: str) -> PaymentRequired:
    return PaymentRequired(error=error, resource=resource(terms), accepts=[rail.requirements(terms, amount)])


def offer_text(rail: UsdcRail, terms: ImageTerms, amount: int) -> str:
    """Why payment is asked for, in words an agent (or its user) can act on."""
    return (
        f"payment required: ${usd_text(amount)} in USDC ({rail.network}, token {rail.usdc}) by an x402 `exact` "
        f"authorization to the GenImNFT contract {rail.contract}, valid for at most {rail.window} s. It is held "
        f"in the token's escrow until the image is set, and refundable to you if it is not; nothing is charged until "
        f"this server mints your token. A client without x402 can call this tool with a progress token instead "
        f"and pay by its own mint through a payment link."
    )


def payment_required_result(required: PaymentRequired, settlement: SettleResponse | None = None) -> CallToolResult:
    """The x402 MCP answer for a call that is not (or could not be) paid: `isError`, the PaymentRequired object
    in `structuredContent`, and in `content[0].text` inside the spec's `x402/error` wrapper. A settlement that
    failed also goes in `_meta["x402/payment-response"]` (and in `structuredContent`, as the spec shows it)."""
    body = required.model_dump(by_alias=True, exclude_none=True)
    structured: dict[str, Any] = dict(body)
    meta = None
    if settlement is not None:
        structured[MCP_PAYMENT_RESPONSE_META_KEY] = settlement_json(settlement)
        meta = {MCP_PAYMENT_RESPONSE_META_KEY: settlement_json(settlement)}
    text = json.dumps({"x402/error": {"code": 402, "message": required.error, "data": body}}, ensure_ascii=False)
    return CallToolResult(
        isError=True,
        structuredContent=structured,
        content=[TextContent(type="text", text=text)],
        _meta=meta,  # type: ignore[call-arg]
    )


def settlement_json(settlement: SettleResponse) -> dict[str, Any]:
    return settlement.model_dump(by_alias=True, exclude_none=True)


def with_settlement(result: CallToolResult, settlement: SettleResponse) -> CallToolResult:
    """`result` (the receipt as today, or a delivery error after payment) with the x402 settlement in `_meta`."""
    meta = dict(result.meta or {})
    meta[MCP_PAYMENT_RESPONSE_META_KEY] = settlement_json(settlement)
    return result.model_copy(update={"meta": meta})
