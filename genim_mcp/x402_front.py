"""The x402 path of a priced tool call: the answer to a call without payment, and the order of a paid one.

Which calls take this path: x402 gives a client no way to say it speaks x402 before it pays, and MCP has no
capability for it. So a call that carries `_meta["x402/payment"]` is paid by x402; a call without one gets the
x402 `PaymentRequired` answer when it carries no progress token (an agent's SDK, which retries with a payment),
and today's mint-as-payment flow when it does (a client that shows progress, where a person can follow the
link). In local mode the configured account pays every call without a payment: by its own ETH mint (today's
flow) with `local_rail = "eth"`, or with `local_rail = "usdc"` by an x402 authorization it signs itself
(x402_local), which then takes the same path as an agent's.

A paid call runs in this order, as a facilitator of its own (no third party is contacted): verify the payment
(x402_verify), bind it to this call (x402_ledger), settle it by minting (x402_settle), wait for the image
(delivery), answer: the receipt as today, with the settlement in `_meta["x402/payment-response"]`. The SDK's
`create_payment_wrapper` settles after the tool runs; here the settlement is the mint the oracle works from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import httpx
from eth_account.signers.local import LocalAccount
from mcp.server.fastmcp import Context
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from web3 import Web3
from web3.exceptions import Web3Exception
from x402.mcp import MCP_PAYMENT_META_KEY
from x402.mechanisms.evm.constants import NAME_ABI, VERSION_ABI
from x402.schemas import SettleResponse

from genim_mcp.config import FrontConfig
from genim_mcp.delivery import Delivery, Progress
from genim_mcp.store import Store
from genim_mcp.terms import ImageTerms
from genim_mcp.units import usd_text
from genim_mcp.x402_ledger import AlreadyPresented, Ledger, Payment
from genim_mcp.x402_local import OwnUsdcPayer
from genim_mcp.x402_settle import NotSettled, Relayer, Settled
from genim_mcp.x402_terms import (
    USDC_DECIMALS,
    UsdcRail,
    offer_text,
    payment_required,
    payment_required_result,
    with_settlement,
)
from genim_mcp.x402_verify import (
    Authorization,
    ChainReader,
    PaymentRefused,
    check_offer,
    check_on_chain,
    check_window,
    parse_payment,
)
from genimnft.accounts import load_account
from genimnft.contract import Chain
from genimnft.settings import ConfigError

log = logging.getLogger("genim.mcp.x402")
INDEX_WAIT = 120.0  # seconds a settled token may take to reach the follower's index (its confirmations)
T = TypeVar("T")


def build_x402(
    config: FrontConfig, chain: Chain, store: Store, delivery: Delivery, account: LocalAccount | None
) -> X402Front | None:
    """The x402 path, if this deployment has a USDC rail and there is a relayer: the configured one, or in local
    mode the buyer's own account (it pays its own gas there). Settlements sent before a restart are reconciled.
    Local mode with `local_rail = "usdc"` pays its own calls through it (x402_local), and needs it."""
    own_usdc = config.mode == "local" and config.local_rail == "usdc"
    usdc = chain.contract.functions.usdc().call()
    if int(usdc, 16) == 0:
        if own_usdc:
            raise ConfigError(f'local_rail = "usdc", but the contract {chain.address} has no USDC rail')
        log.info("the contract has no USDC rail: x402 is off")
        return None
    relayer = load_account(config.relayer, config.relayer_passphrase_env) if config.relayer else account
    if relayer is None:
        log.info("no relayer configured: x402 is off")
        return None
    token = chain.w3.eth.contract(address=Web3.to_checksum_address(usdc), abi=NAME_ABI + VERSION_ABI).functions
    rail = UsdcRail(chain.chain_id(), chain.address, usdc, token.name().call(), token.version().call(),
                    config.x402_window)  # fmt: skip
    ledger = Ledger(config.state_dir)
    settler = Relayer(chain, rail, relayer, ledger, config.poll_interval)
    settler.reconcile()
    log.info("x402: %s USDC %s to %s, relayer %s", rail.network, rail.usdc, rail.contract, relayer.address)
    own = None
    if own_usdc:
        assert account is not None
        own = OwnUsdcPayer(account, _usdc_units(config.max_usd_per_call), _usdc_units(config.max_usd_per_day))
    return X402Front(rail, settler, ledger, store, delivery, ask_unpaid=config.mode == "hosted", own=own)


def _usdc_units(dollars: Decimal) -> int:
    return int(dollars * 10**USDC_DECIMALS)


class X402Front:
    def __init__(
        self,
        rail: UsdcRail,
        relayer: Relayer,
        ledger: Ledger,
        store: Store,
        delivery: Delivery,
        ask_unpaid: bool,
        own: OwnUsdcPayer | None = None,
    ) -> None:
        self.rail = rail
        self.relayer = relayer
        self.ledger = ledger
        self.store = store
        self.delivery = delivery
        self.reader = ChainReader(relayer.w3)
        self.ask_unpaid = ask_unpaid  # hosted mode: calls without payment nor progress token get PaymentRequired
        self.own = own  # local mode on USDC: the configured account pays every call without a payment

    async def answer(self, terms: ImageTerms, ctx: Context | None) -> CallToolResult | None:
        """This call's answer if it takes the x402 path (see the module's doc); None for today's flow."""
        meta = _request_meta(ctx)
        payment = meta.get(MCP_PAYMENT_META_KEY)
        if payment is not None:
            return await self.paid(terms, payment, ctx)
        if self.own is not None:
            return await self.pay_own(terms, self.own, ctx)
        if not self.ask_unpaid or meta.get("progressToken") is not None:
            return None
        amount = await self._price(terms.tier)
        return payment_required_result(payment_required(self.rail, terms, amount, offer_text(self.rail, terms, amount)))

    async def paid(self, terms: ImageTerms, raw: object, ctx: Context | None) -> CallToolResult:
        amount = await self._price(terms.tier)
        return await self._settle(terms, amount, lambda: self._verified(terms, amount, raw), ctx)

    async def pay_own(self, terms: ImageTerms, own: OwnUsdcPayer, ctx: Context | None) -> CallToolResult:
        """The configured account pays this call in USDC: caps checked (CapExceeded: nothing signed), then it
        signs this call's offer and the payment goes the way of any agent's."""
        amount = await self._price(terms.tier)

        async def signed_and_verified() -> tuple[Payment, Authorization]:
            async with own.lock:  # until claimed: the day's count includes every payment that passed its check
                own.check_caps(self.ledger, amount)
                if ctx is not None:
                    await ctx.info(
                        f"paying {usd_text(amount)} in USDC from the configured account {own.address}: an x402 "
                        f"authorization to the GenImNFT contract {self.rail.contract}, settled by "
                        f"{self._gas_payer(own)}"
                    )
                offer = payment_required(self.rail, terms, amount, offer_text(self.rail, terms, amount))
                raw = await _in_thread(lambda: own.sign(offer))
                return await self._verified(terms, amount, raw)

        return await self._settle(terms, amount, signed_and_verified, ctx)

    def _gas_payer(self, own: OwnUsdcPayer) -> str:
        if self.relayer.address == own.address:
            return "that account itself, which spends ETH only on the gas"
        return f"the relayer {self.relayer.address}, which pays the gas: the account spends no ETH"

    async def _settle(
        self,
        terms: ImageTerms,
        amount: int,
        verify: Callable[[], Awaitable[tuple[Payment, Authorization]]],
        ctx: Context | None,
    ) -> CallToolResult:
        try:
            payment, auth = await verify()
        except (PaymentRefused, AlreadyPresented) as exc:
            return self._refused(terms, amount, f"not paid: {exc}")
        except (Web3Exception, httpx.HTTPError, OSError) as exc:
            return self._refused(terms, amount, f"not paid: the chain did not answer ({exc}); nothing was sent")
        try:
            settled = await _in_thread(lambda: self.relayer.settle(payment, terms, auth))
        except NotSettled as exc:
            log.warning("x402 payment %s/%s not settled: %s", payment.payer, payment.nonce, exc)
            failed = SettleResponse(success=False, error_reason=exc.reason, error_message=str(exc), payer=auth.payer,
                                    transaction=exc.tx or "", network=self.rail.network)  # fmt: skip
            return self._refused(terms, amount, f"not paid: {exc}", failed)
        except (Web3Exception, httpx.HTTPError, OSError, ValueError) as exc:
            return self._unknown(terms, amount, payment, exc)
        return await self._deliver(settled, auth, amount, ctx)

    async def _verified(self, terms: ImageTerms, amount: int, raw: object) -> tuple[Payment, Authorization]:
        """The payment checked against this call's offer and the chain, then claimed for this call."""
        offered = self.rail.requirements(terms, amount)
        auth = check_offer(parse_payment(raw), offered)
        chain_time = await _in_thread(lambda: self.relayer.w3.eth.get_block("latest")["timestamp"])
        check_window(auth, chain_time, self.rail.window)
        await _in_thread(lambda: check_on_chain(self.reader, self.rail, auth))
        payment = self.ledger.claim(auth.payer, auth.nonce_hex, offered.extra["terms"], terms.tier, amount,
                                    auth.valid_before)  # fmt: skip
        return payment, auth

    async def _deliver(self, settled: Settled, auth: Authorization, amount: int, ctx: Context | None) -> CallToolResult:
        """After settlement the buyer has paid: every answer from here on says so, and carries the settlement."""
        token_id = settled.token_id
        settlement = SettleResponse(success=True, payer=auth.payer, transaction=settled.tx, network=self.rail.network,
                                    amount=str(amount), extra={"tokenId": token_id})  # fmt: skip
        paid = f"paid: token {token_id} minted to {auth.payer} in tx {settled.tx}"
        if ctx is not None:  # an agent that shows log messages learns its receipt before the image
            await ctx.info(f"{paid}; get_image({token_id}) returns the image later too")
        try:
            await self._indexed(token_id)
            result = await self.delivery.deliver_token(token_id, settled.tx, Progress(ctx))
        except ToolError as exc:
            result = CallToolResult(isError=True, content=[TextContent(type="text", text=f"{paid}. {exc}")])
        return with_settlement(result, settlement)

    async def _indexed(self, token_id: int) -> None:
        deadline = time.monotonic() + INDEX_WAIT
        while self.store.token(token_id) is None:
            if time.monotonic() > deadline:
                raise ToolError(f"the index has not seen token {token_id} yet: call get_image({token_id}) later")
            await anyio.sleep(0.2)

    def _refused(
        self, terms: ImageTerms, amount: int, error: str, failed: SettleResponse | None = None
    ) -> CallToolResult:
        return payment_required_result(payment_required(self.rail, terms, amount, error), failed)

    def _unknown(self, terms: ImageTerms, amount: int, payment: Payment, exc: Exception) -> CallToolResult:
        """The chain stopped answering during settlement: say exactly how far it got."""
        known = self.ledger.get(payment.payer, payment.nonce)
        if known is not None and known.state == "claimed":
            self.ledger.unused(known, f"the chain did not answer before sending: {exc}")
            return self._refused(terms, amount, f"not paid: the chain did not answer ({exc}); nothing was sent")
        tx = known.tx if known else None
        log.error("x402 payment %s/%s: settlement outcome unknown (%s)", payment.payer, payment.nonce, exc)
        text = (
            f"the chain stopped answering while this server's mint (tx {tx}) was on its way ({exc}). If it is mined, "
            "you paid and the token is yours (you are its holder; get_image answers for it); if it is not mined "
            "before your authorization expires, nothing was charged"
        )
        return CallToolResult(isError=True, content=[TextContent(type="text", text=text)])

    async def _price(self, tier: int) -> int:
        amount = await _in_thread(lambda: self.relayer.chain.contract.functions.price(tier).call())
        if amount == 0:
            raise ToolError(f"tier {tier} is not on sale; nothing was paid")
        return amount


def _request_meta(ctx: Context | None) -> dict[str, Any]:
    """The call's `_meta` (progress token and extra keys such as x402/payment); empty when there is none."""
    if ctx is None:
        return {}
    try:
        meta = ctx.request_context.meta
    except ValueError:  # outside a request
        return {}
    if meta is None:
        return {}
    return {"progressToken": meta.progressToken, **(meta.model_extra or {})}


async def _in_thread(work: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(work)
