"""The MCP tools: three priced image tools (one per tier, through paymcp's PROGRESS flow) and three free ones.

Each priced call runs, in order: FastMCP's schema check (aspect ratio, style), the guard (prompt bounds, caps,
one order for this call), paymcp (payment link, status polling until the mint confirms), then delivery.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from paymcp import Mode, PayMCP, price

from genim_mcp.delivery import Delivery, Progress
from genim_mcp.follower import Follower
from genim_mcp.pricing import eth_text
from genim_mcp.provider import MintPaymentProvider, current_order
from genim_mcp.store import CapExceeded
from genim_mcp.terms import STYLES, TIER_NAMES, AspectLabel, Style, TermsError, compose_prompt, image_terms
from genimnft.aspects import ASPECT_LABELS

PaidTool = Callable[..., Awaitable[CallToolResult]]


class NoPaymentMemory:
    """paymcp's state store, switched off: in PROGRESS mode paymcp hands a session's stored payment to that
    session's next call of the same tool. Our payments are per call (the order in `current_order`)."""

    async def get(self, key: str) -> None:
        return None

    async def set(self, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        return None

    async def delete(self, key: str) -> None:
        return None

    async def get_and_delete(self, key: str) -> None:
        return None


class GuardedRegistrar:
    """What PayMCP decorates: it registers each priced tool on FastMCP behind `guard`, so the arguments are
    checked and the order opened before paymcp creates a payment link."""

    def __init__(self, server: FastMCP, guard: Callable[[PaidTool], PaidTool]) -> None:
        self.server = server
        self.guard = guard

    def tool(self, *args: Any, **kwargs: Any) -> Callable[[PaidTool], PaidTool]:
        def register(paid: PaidTool) -> PaidTool:
            return self.server.tool(*args, **kwargs)(self.guard(paid))

        return register

    def get_context(self) -> Context:
        return self.server.get_context()


def register_tools(server: FastMCP, provider: MintPaymentProvider, delivery: Delivery, follower: Follower) -> None:
    sizes = provider.config.tier_sizes

    def guard(paid: PaidTool) -> PaidTool:
        tier: int = paid._genim_tier  # type: ignore[attr-defined]

        @functools.wraps(paid)
        async def checked(
            prompt: str, aspect_ratio: str = "1:1", style: str = "photorealistic", ctx: Context | None = None
        ) -> CallToolResult:
            try:
                order = provider.open_order(image_terms(tier, prompt, aspect_ratio, style))
            except (TermsError, CapExceeded) as exc:
                raise ToolError(f"{exc}; nothing was paid") from None
            if ctx is not None:  # for clients that show log messages but send no progress token
                await ctx.info(f"payment for this call: {provider.link(order)}")
            token = current_order.set(order)
            try:
                return await paid(prompt=prompt, aspect_ratio=aspect_ratio, style=style, ctx=ctx)
            except RuntimeError as exc:  # paymcp's words for a payment that ended unpaid; anything else goes on
                reason = provider.why_unpaid(order.id)
                if reason is None:
                    raise
                raise ToolError(reason) from exc
            finally:
                current_order.reset(token)

        return checked

    paymcp = PayMCP(
        GuardedRegistrar(server, guard),
        providers={"genimnft-mint": provider},
        mode=Mode.PROGRESS,
        state_store=NoPaymentMemory(),
    )
    facts = follower.facts
    for tier, name in enumerate(TIER_NAMES):
        tool = _priced_tool(tier, delivery)
        paid = price(float(eth_text(facts.prices[tier])), "ETH")(tool)
        paymcp.mcp.tool(name=f"generate_image_{name}", description=_describe(tier, follower, sizes[tier]))(paid)

    @server.tool()
    async def list_tiers() -> CallToolResult:
        """Prices (ETH from the contract, USD from Chainlink ETH/USD or the configured fallback), image sizes,
        aspect ratios, styles, and how long the oracle has before a paid image becomes refundable."""
        facts = follower.facts
        tiers = [
            {
                "tool": f"generate_image_{name}",
                "tier": tier,
                "size": sizes[tier],
                "price_wei": str(facts.prices[tier]),
                "price_eth": eth_text(facts.prices[tier]),
                "price_usd": str(facts.usd.usd(facts.prices[tier])),
            }
            for tier, name in enumerate(TIER_NAMES)
        ]
        document = {
            "tiers": tiers,
            "usd_per_eth": str(facts.usd.usd_per_eth),
            "usd_source": facts.usd.source,
            "usd_note": facts.usd.note,
            "deadline_seconds": facts.timeout,
            "aspect_ratios": ASPECT_LABELS,
            "styles": STYLES,
            "chain_id": facts.chain_id,
            "contract": facts.contract,
            "on_chain_prompt": compose_prompt("<prompt>", "<style>"),
        }
        return CallToolResult(content=[TextContent(type="text", text=json.dumps(document))])

    @server.tool()
    async def get_image(token_id: int) -> CallToolResult:
        """The image of a token bought earlier: the token id is the receipt. While it is being generated this
        says so; past its deadline without an image, it says how to refund."""
        return await delivery.get_image(token_id)

    @server.tool()
    async def refund_status(token_id: int) -> CallToolResult:
        """Whether a token can be refunded now (its deadline passed without an image), and how."""
        return await delivery.refund_status(token_id)


def _priced_tool(tier: int, delivery: Delivery) -> PaidTool:
    async def generate(
        prompt: str, aspect_ratio: AspectLabel = "1:1", style: Style = "photorealistic", ctx: Context | None = None
    ) -> CallToolResult:
        return await delivery.deliver(current_order.get().id, Progress(ctx))

    generate.__name__ = generate.__qualname__ = f"generate_image_{TIER_NAMES[tier]}"
    generate._genim_tier = tier  # type: ignore[attr-defined]
    return generate


def _describe(tier: int, follower: Follower, size: str) -> str:
    facts = follower.facts
    wei = facts.prices[tier]
    return (
        f"Generate one {TIER_NAMES[tier]} image ({size} pixel budget in the chosen aspect ratio) as a "
        f"GenImNFT token. Price: {eth_text(wei)} ETH (about ${facts.usd.usd(wei)}; {facts.usd.note}), paid as your "
        f"own mint into the token's escrow; the oracle is paid only when the image is set, otherwise the holder can "
        f"refund after {facts.timeout} s. prompt: 1..1000 bytes of UTF-8 on-chain, where the on-chain prompt is "
        f"'{compose_prompt('<prompt>', '<style>')}'. Returns the token, its IPFS links and the PNG."
    )
