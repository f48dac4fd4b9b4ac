"""paymcp's payment provider whose payment is the buyer's own `mint` of exactly one call's terms.

paymcp's `create_payment` sees only an amount, so the tool's guard opens the order (exact tier, aspect and
on-chain prompt, the tier's dollar price, the oracle epoch its mint names, caps checked in local mode) and hands it
over in a context variable scoped to that one call. Status comes from the store the follower keeps; nothing here
blocks on the chain.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar

from paymcp.providers import BasePaymentProvider

from genim_mcp.calldata import TAG_BYTES, MintQuote
from genim_mcp.config import FrontConfig
from genim_mcp.follower import Follower
from genim_mcp.pricing import max_value
from genim_mcp.store import GWEI, Order, Store
from genim_mcp.terms import ImageTerms, order_terms
from genim_mcp.units import usd_text
from genim_mcp.wallet import LocalWallet

# The order of the tool call running in this task; set by the tool's guard around paymcp's wrapper.
current_order: ContextVar[Order] = ContextVar("genim_current_order")


def link_value(value: int, price_wei: int, order: Order) -> int:
    """The EIP-681 link's value: the payment's offset (under one gwei) takes the place of the margin's last gwei,
    so the link never sends more than `value`; with a margin of a gwei or less it goes on top instead."""
    if value - price_wei > GWEI:
        return value - GWEI + order.value_offset
    return value + order.value_offset


class PaymentUnavailable(RuntimeError):
    """The contract cannot take this payment now (tier off sale, ETH/USD feed unusable); nothing was paid."""


class MintPaymentProvider(BasePaymentProvider):
    def __init__(
        self,
        config: FrontConfig,
        store: Store,
        follower: Follower,
        link: Callable[[Order], str],
        wallet: LocalWallet | None = None,
    ) -> None:
        super().__init__(api_key="")
        self.config = config
        self.store = store
        self.follower = follower
        self.link = link
        self.wallet = wallet

    def open_order(self, terms: ImageTerms, renews: str | None = None) -> Order:
        """Records the payment for one call at the tier's current price and oracle epoch; raises
        PaymentUnavailable, or CapExceeded in local mode."""
        facts, now = self.follower.facts, time.time()
        usd = facts.prices.usd[terms.tier]
        if usd == 0:
            raise PaymentUnavailable(f"the {terms.tier_name} tier is not on sale now")
        if facts.prices.wei is None:
            raise PaymentUnavailable(str(facts.prices.eth_unavailable))
        order = Order(
            id=secrets.token_bytes(TAG_BYTES).hex(),
            tier=terms.tier,
            aspect=int(terms.aspect),
            style=terms.style,
            prompt=terms.prompt,
            price_usd=usd,
            max_wei=max_value(facts.prices.wei[terms.tier], self.config.price_margin_bps),
            oracle_epoch=facts.oracle_epoch,
            created_at=now,
            expires_at=now + self.config.payment_ttl,
            created_block=facts.head,
            state="awaiting",
            token_id=None,
            mint_tx=None,
            failure=None,
            renewable=False,
            renewed_by=None,
            payer=self.wallet.address if self.wallet else None,
            value_offset=self._free_offset(),
        )
        if self.wallet is None:
            return self.store.create_order(order, renews=renews)
        return self.store.create_order(order, self.config.max_wei_per_call, self.config.max_wei_per_day, renews)

    def _free_offset(self) -> int:
        while self.store.offset_in_use(offset := secrets.randbelow(GWEI - 1) + 1):
            pass
        return offset

    def quote(self, order: Order) -> MintQuote | None:
        """The mint that pays `order` now: its terms and oracle epoch, sending the price at the current rate plus
        the margin; None while the contract takes no ETH payment."""
        wei = self.follower.facts.prices.wei
        if wei is None:
            return None
        value = max_value(wei[order.tier], self.config.price_margin_bps)
        return MintQuote(order_terms(order), order.oracle_epoch, value, link_value(value, wei[order.tier], order))

    def create_payment(self, amount: float, currency: str, description: str) -> tuple[str, str]:
        try:
            order = current_order.get()
        except LookupError:
            raise RuntimeError("a GenImNFT payment is opened by the tool's guard; none is open in this call") from None
        if self.wallet is not None:
            self.wallet.pay(order)
        return order.id, self.link(order)

    def link_message(self, url: str, amount: object = None, currency: object = None) -> str:
        """What the assistant reads with the link (in place of paymcp's "please pay … come back and confirm"):
        what really happens next, in this mode, at this payment's own price."""
        try:
            price = usd_text(current_order.get().price_usd)
        except LookupError:
            price = f"{amount} {currency}"
        if self.wallet is not None:
            return (
                f"Paying {price} in ETH for this call by itself: the configured account {self.wallet.address} sends "
                "the mint below (within its per-call and per-day caps); nothing to confirm. The image follows once "
                f"the oracle has set it.\n\n{url}"
            )
        return (
            f"To run this call, pay {price} in ETH with your own wallet at the link below (a mint into the token's "
            "escrow). This call goes on by itself once the mint is confirmed; nothing to confirm here."
            f"\n\n{url}"
        )

    def get_payment_status(self, payment_id: str) -> str:
        return self.store.payment_status(payment_id)

    def renewable(self, order_id: str) -> bool:
        """Its mint failed only because the oracle set or the rate moved: paying again at fresh terms can work."""
        order = self.store.order(order_id)
        return order is not None and order.state == "failed" and order.renewable

    def why_unpaid(self, order_id: str) -> str | None:
        """The tool error for a payment that ended without a mint that pays for it; None if it was paid."""
        order = self.store.order(order_id)
        if order is None or order.state in ("paid", "awaiting"):
            return None
        if order.state == "failed":
            return f"payment failed: {order.failure}."
        if order.notice:
            return (
                f"the payment link expired after {self.config.payment_ttl:.0f} s without a mint that carries this "
                f"payment's id; {order.notice}"
            )
        if order.mint_tx:
            return (
                f"the payment link expired after {self.config.payment_ttl:.0f} s before its mint (tx {order.mint_tx}) "
                "was confirmed; if that mint lands, its token is generated as usual (the token id is in its receipt)"
            )
        return (
            f"the payment link expired after {self.config.payment_ttl:.0f} s without a confirmed mint of exactly this "
            "call's terms; nothing was charged for this call. Call the tool again for a new link."
        )
