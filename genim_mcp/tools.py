"""The MCP tools: three priced image tools (one per tier, through paymcp's PROGRESS flow) and three free ones.

Each priced call runs, in order: FastMCP's schema check (aspect ratio, style), the guard (prompt bounds, caps,
one order for this call), paymcp (payment link, status polling until the mint confirms), then delivery. When the
mint reverts because the owner authorised another oracle (the epoch it names is outdated) or the rate moved past
the margin, the buyer is told so (nothing was charged but gas) and the same call goes on with a fresh payment.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from paymcp import Mode, PayMCP, price
from pydantic import Field

from genim_mcp.delivery import Delivery, Progress
from genim_mcp.follower import ChainFacts, Follower
from genim_mcp.pricing import max_value
from genim_mcp.provider import MintPaymentProvider, PaymentUnavailable, current_order
from genim_mcp.ratelimit import PaymentRateLimit
from genim_mcp.store import CapExceeded, Order
from genim_mcp.terms import STYLES, TIER_NAMES, AspectLabel, Style, TermsError, compose_prompt, image_terms
from genim_mcp.units import eth_exact, usd_decimal
from genim_mcp.x402_front import X402Front
from genimnft.aspects import ASPECT_LABELS

PaidTool = Callable[..., Awaitable[CallToolResult]]
TOKEN_ID_TEXT = "the token's id (a whole number from 0), as the paid call's receipt gives it"
TokenIdArg = Annotated[int | None, Field(description=TOKEN_ID_TEXT)]
MintTxArg = Annotated[
    str | None, Field(description="instead of token_id: the hash of the mint transaction that paid (0x + 64 hex)")
]
PromptArg = Annotated[
    str,
    Field(description="what to draw, in words; with ', <style> style' added it goes on-chain, 1..1000 bytes of UTF-8"),
]
AspectArg = Annotated[AspectLabel, Field(description="the image's aspect ratio, width:height")]
StyleArg = Annotated[Style, Field(description="the style, added to the prompt as ', <style> style'")]
# A call whose mint reverted because the oracle set or the rate moved gets a fresh payment, this many in all.
MAX_PAYMENTS_PER_CALL = 3


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


def register_tools(
    server: FastMCP,
    provider: MintPaymentProvider,
    delivery: Delivery,
    follower: Follower,
    x402: X402Front | None = None,
) -> None:
    sizes = provider.config.tier_sizes
    in_flight: set[str] = set()  # the orders of calls running now
    limit = PaymentRateLimit(provider.config.payments_per_minute_session, provider.config.payments_per_minute_address)

    def earlier_tokens() -> str:
        """Local mode: tokens this account paid for in earlier calls whose image no answer carried yet (the call
        ended, was cancelled, or the server stopped before it)."""
        if provider.wallet is None:
            return ""
        tokens = [token_id for order_id, token_id in provider.store.undelivered(provider.wallet.address)
                  if order_id not in in_flight]  # fmt: skip
        if not tokens:
            return ""
        listed = ", ".join(f"token {token_id} (get_image({token_id}))" for token_id in tokens)
        return f"\nPaid earlier but not delivered yet: {listed}; my_tokens lists them all."

    def guard(paid: PaidTool) -> PaidTool:
        tier: int = paid._genim_tier  # type: ignore[attr-defined]

        @functools.wraps(paid)
        async def checked(
            prompt: str, aspect_ratio: str = "1:1", style: str = "photorealistic", ctx: Context | None = None
        ) -> CallToolResult:
            try:
                terms = image_terms(tier, prompt, aspect_ratio, style)
                if x402 is not None and (answer := await x402.answer(terms, ctx)) is not None:
                    return answer  # paid by x402, or its PaymentRequired (x402_front: which calls)
                if (too_many := limit.admit(ctx)) is not None:
                    raise PaymentUnavailable(too_many)
                order = provider.open_order(terms)
            except (TermsError, CapExceeded, PaymentUnavailable) as exc:
                raise ToolError(f"{exc}; nothing was paid") from None
            mine = {order.id}  # this call's orders (a renewed payment adds one)
            in_flight.add(order.id)

            async def pay_and_deliver(order: Order) -> CallToolResult:
                for attempt in range(1, MAX_PAYMENTS_PER_CALL + 1):
                    if ctx is not None:  # for clients that show log messages but send no progress token
                        await ctx.info(f"payment for this call: {provider.link(order)}")
                    token = current_order.set(order)
                    try:
                        return await _telling_notices(
                            paid(prompt=prompt, aspect_ratio=aspect_ratio, style=style, ctx=ctx),
                            provider,
                            order.id,
                            ctx,
                        )
                    except RuntimeError as exc:  # paymcp's words for a payment that ended unpaid; anything else goes on
                        reason = provider.why_unpaid(order.id)
                        if reason is None:
                            raise
                        if attempt == MAX_PAYMENTS_PER_CALL or not provider.renewable(order.id):
                            raise ToolError(reason) from exc
                        try:
                            order = provider.open_order(terms, renews=order.id)
                        except (CapExceeded, PaymentUnavailable) as refused:
                            raise ToolError(f"{reason} No fresh payment was opened: {refused}.") from exc
                        mine.add(order.id)
                        in_flight.add(order.id)
                        if ctx is not None:
                            await ctx.warning(f"{reason} Pay again at the new terms: {provider.link(order)}")
                    finally:
                        current_order.reset(token)
                raise AssertionError("unreachable: the last attempt returns or raises")

            try:
                result = await pay_and_deliver(order)
            except ToolError as exc:
                raise ToolError(f"{exc}{earlier_tokens()}") from exc.__cause__
            finally:
                in_flight.difference_update(mine)
            if note := earlier_tokens():
                result.content.append(TextContent(type="text", text=note.strip()))
            return result

        return checked

    paymcp = PayMCP(
        GuardedRegistrar(server, guard),
        providers={"genimnft-mint": provider},
        mode=Mode.PROGRESS,
        state_store=NoPaymentMemory(),
    )
    for tier, name in enumerate(TIER_NAMES):
        tool = _priced_tool(tier, delivery)
        # paymcp's own price tag (its payment message, the tool's meta): the dollar price at start-up.
        paid = price(float(usd_decimal(follower.facts.prices.usd[tier])), "USD")(tool)
        local = provider.config.local_rail if provider.wallet is not None else None
        description = _describe(tier, sizes[tier], local)
        paymcp.mcp.tool(name=f"generate_image_{name}", description=description)(paid)

    @server.tool()
    async def list_tiers() -> CallToolResult:
        """The live prices: each tier's US dollar price from the contract, and what it is in ETH now at Chainlink's
        ETH/USD rate (as the contract converts it); image sizes, aspect ratios, styles, and how long the oracle
        has before a paid image becomes refundable."""
        return _json_result(tiers_document(follower.facts, provider.config.price_margin_bps, sizes))

    @server.tool()
    async def get_image(token_id: TokenIdArg = None, mint_tx: MintTxArg = None) -> CallToolResult:
        """The image of a token bought earlier: the token id is the receipt, and the hash of the mint transaction
        that paid for it finds it too. While it is being generated this says so; past its deadline without an
        image, it says how to refund."""
        if (token_id is None) == (mint_tx is None):
            raise ToolError("give either token_id or mint_tx (the mint transaction's hash); nothing was paid")
        return await delivery.get_image(token_id if token_id is not None else await delivery.token_of_mint(mint_tx))

    @server.tool()
    async def refund_status(token_id: Annotated[int, Field(description=TOKEN_ID_TEXT)]) -> CallToolResult:
        """Whether a token can be refunded now (its deadline passed without an image), and how."""
        return await delivery.refund_status(token_id)

    if provider.wallet is not None:
        payer = provider.wallet.address

        @server.tool()
        async def my_tokens() -> CallToolResult:
            """Every token this server's configured account has minted (free): status (generating, image set,
            refundable, refunded), prompt, mint transaction, and whether any answer has carried its image yet."""
            return _json_result(delivery.tokens_document(payer))


async def _telling_notices(
    work: Awaitable[CallToolResult], provider: MintPaymentProvider, order_id: str, ctx: Context | None
) -> CallToolResult:
    """`work` (paymcp's flow for one payment) while `_tell_notices` watches that payment; its exception as raised
    (not wrapped in a task group's ExceptionGroup)."""
    outcome: list[CallToolResult | Exception] = []
    async with anyio.create_task_group() as group:
        group.start_soon(_tell_notices, provider, order_id, ctx)
        try:
            outcome.append(await work)
        except Exception as exc:  # re-raised below, outside the task group
            outcome.append(exc)
        finally:
            group.cancel_scope.cancel()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


async def _tell_notices(provider: MintPaymentProvider, order_id: str, ctx: Context | None) -> None:
    """While the call waits for its payment: a mint of its exact terms that carries no proof of this payment
    pays nothing, and the buyer is told which token it became (they may have sent it)."""
    told: str | None = None
    while ctx is not None:
        order = provider.store.order(order_id)
        if order is None or order.state != "awaiting":
            return
        if order.notice and order.notice != told:
            told = order.notice
            await ctx.warning(order.notice)
        await anyio.sleep(provider.config.payment_poll)


def tiers_document(facts: ChainFacts, margin_bps: int, sizes: tuple[str, ...]) -> dict:
    """list_tiers' answer: dollars first, the ETH amount at the contract's current rate, the margin a mint adds."""
    prices = facts.prices
    rate = prices.usd_per_eth()
    tiers = []
    for tier, name in enumerate(TIER_NAMES):
        wei = prices.wei[tier] if prices.wei is not None else None
        tiers.append(
            {
                "tool": f"generate_image_{name}",
                "tier": tier,
                "size": sizes[tier],
                "price": prices.text(tier),
                "price_usd": str(usd_decimal(prices.usd[tier])),
                "price_wei": str(wei) if wei is not None else None,
                "price_eth": eth_exact(wei) if wei is not None else None,
                "mint_sends_wei": str(max_value(wei, margin_bps)) if wei else None,
            }
        )
    return {
        "tiers": tiers,
        "usd_per_eth": f"{rate:.2f}" if rate is not None else None,
        "eth_payments": prices.eth_unavailable or "available",
        "how_eth_is_charged": (
            f"the contract charges the dollar price at Chainlink's ETH/USD rate in the mint's block; a mint sends up "
            f"to {margin_bps / 100:g}% more (mint_sends_wei) in case the rate moves before it is confirmed, and the "
            "contract returns the excess in the same transaction. Network fees are extra."
        ),
        "deadline_seconds": facts.timeout,
        "aspect_ratios": ASPECT_LABELS,
        "styles": STYLES,
        "chain_id": facts.chain_id,
        "contract": facts.contract,
        "oracle_epoch": facts.oracle_epoch,
        "on_chain_prompt": compose_prompt("<prompt>", "<style>"),
    }


def _priced_tool(tier: int, delivery: Delivery) -> PaidTool:
    async def generate(
        prompt: PromptArg,
        aspect_ratio: AspectArg = "1:1",
        style: StyleArg = "photorealistic",
        ctx: Context | None = None,
    ) -> CallToolResult:
        return await delivery.deliver(current_order.get().id, Progress(ctx))

    generate.__name__ = generate.__qualname__ = f"generate_image_{TIER_NAMES[tier]}"
    generate._genim_tier = tier  # type: ignore[attr-defined]
    return generate


def _describe(tier: int, size: str, local_rail: str | None) -> str:
    """No figures that go stale (prices, the rate, the deadline): list_tiers has them live. `local_rail`: local
    mode's asset ("eth" or "usdc"), None in hosted mode."""
    spends = {
        "eth": "Local mode: calling this tool spends the configured account's ETH at once, by itself (no "
        "confirmation), up to the per-call and per-day caps. ",
        "usdc": "Local mode: calling this tool spends the configured account's USDC at once, by itself (no "
        "confirmation): an x402 authorization for exactly the dollar price, up to the per-call and per-day caps in "
        "US dollars. ",
    }.get(local_rail or "", "")
    paid_in = (
        "paid in USDC (exactly the dollar price) into the token's escrow"
        if local_rail == "usdc"
        else "paid in ETH at Chainlink's ETH/USD rate as your own mint into the token's escrow"
    )
    return spends + (
        f"Generate one {TIER_NAMES[tier]} image ({size} pixel budget in the chosen aspect ratio) as a GenImNFT "
        f"token. Price: the tier's US dollar price, {paid_in}; call list_tiers for the live price and deadline. The "
        "oracle is paid only when the image is set; otherwise the holder can refund after the deadline. prompt: "
        f"1..1000 bytes of UTF-8 on-chain, where the on-chain prompt is '{compose_prompt('<prompt>', '<style>')}'. "
        "Returns the token, its IPFS links and the PNG."
    )


def _json_result(document: dict) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(document))])
