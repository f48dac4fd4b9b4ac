"""paymcp's payment provider whose payment is the buyer's own `mint` of exactly one call's terms.

paymcp's `create_payment` sees only an amount, so the tool's guard opens the order (exact tier, aspect and
on-chain prompt, caps checked in local mode) and hands it over in a context variable scoped to that one call.
Status comes from the store the follower keeps; nothing here blocks on the chain.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar

from paymcp.providers import BasePaymentProvider

from genim_mcp.calldata import TAG_BYTES
from genim_mcp.config import FrontConfig
from genim_mcp.follower import Follower
from genim_mcp.store import Order, Store
from genim_mcp.terms import ImageTerms
from genim_mcp.wallet import LocalWallet

# The order of the tool call running in this task; set by the tool's guard around paymcp's wrapper.
current_order: ContextVar[Order] = ContextVar("genim_current_order")


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

    def open_order(self, terms: ImageTerms) -> Order:
        """Records the payment for one call at the tier's current price; raises CapExceeded in local mode."""
        facts, now = self.follower.facts, time.time()
        order = Order(
            id=secrets.token_bytes(TAG_BYTES).hex(),
            tier=terms.tier,
            aspect=int(terms.aspect),
            style=terms.style,
            prompt=terms.prompt,
            price_wei=facts.prices[terms.tier],
            created_at=now,
            expires_at=now + self.config.payment_ttl,
            created_block=facts.head,
            state="awaiting",
            token_id=None,
            mint_tx=None,
            failure=None,
            payer=self.wallet.address if self.wallet else None,
        )
        if self.wallet is None:
            return self.store.create_order(order)
        return self.store.create_order(order, self.config.max_wei_per_call, self.config.max_wei_per_day)

    def create_payment(self, amount: float, currency: str, description: str) -> tuple[str, str]:
        try:
            order = current_order.get()
        except LookupError:
            raise RuntimeError("a GenImNFT payment is opened by the tool's guard; none is open in this call") from None
        if self.wallet is not None:
            self.wallet.pay(order)
        return order.id, self.link(order)

    def get_payment_status(self, payment_id: str) -> str:
        return self.store.payment_status(payment_id, time.time())

    def why_unpaid(self, order_id: str) -> str | None:
        """The tool error for a payment that ended without a mint that pays for it; None if it was paid."""
        order = self.store.order(order_id)
        if order is None or order.state in ("paid", "awaiting"):
            return None
        if order.state == "failed":
            return f"payment failed: {order.failure}"
        if order.mint_tx:
            return (
                f"the payment link expired after {self.config.payment_ttl:.0f} s before its mint (tx {order.mint_tx}) "
                "was confirmed; if that mint lands, its token is generated as usual (the token id is in its receipt)"
            )
        return (
            f"the payment link expired after {self.config.payment_ttl:.0f} s without a confirmed mint of exactly this "
            "call's terms; nothing was charged for this call. Call the tool again for a new link."
        )
