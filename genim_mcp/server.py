"""Wiring: the chain, the store, the follower, the provider, the tools and (hosted) the pay page, and their
lifecycle. Hosted mode serves streamable HTTP (`/mcp`) and the pay page on one port; local mode speaks stdio."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvicorn
from mcp.server.fastmcp import FastMCP
from mcp.server.transport_security import TransportSecuritySettings
from paymcp.payment.flows import progress as paymcp_progress
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from genim_mcp.config import FrontConfig
from genim_mcp.delivery import Delivery
from genim_mcp.follower import Follower
from genim_mcp.paypage import PayPage
from genim_mcp.provider import MintPaymentProvider
from genim_mcp.refusals import PlainRefusals
from genim_mcp.store import Order, Store
from genim_mcp.tools import register_tools
from genim_mcp.wallet import LocalWallet
from genim_mcp.x402_front import build_x402
from genimnft.accounts import load_account
from genimnft.contract import Chain
from genimnft.ipfs import IpfsClient
from genimnft.settings import ConfigError

log = logging.getLogger("genim.mcp")
INSTRUCTIONS = (
    "Buy AI images as GenImNFT tokens on Optimism. list_tiers shows the live prices (US dollars, and ETH at the "
    "contract's Chainlink rate) and the deadline; "
    "generate_image_basic/premium/ultra take a prompt, aspect_ratio and style, ask for payment (your own mint into "
    "the token's escrow) and return the image; get_image(token_id) fetches it again later; refund_status(token_id) "
    "says whether and how an image that never came can be refunded."
)


def local_instructions(rail: str) -> str:
    asset = "USDC (an x402 authorization it signs)" if rail == "usdc" else "ETH (its own mint)"
    return (
        f" This server runs in local mode: a priced call pays by itself from the configured account in {asset}, up "
        "to its caps; my_tokens lists that account's tokens."
    )


@dataclass
class Front:
    config: FrontConfig
    server: FastMCP
    follower: Follower
    store: Store
    wallet: LocalWallet | None

    def run(self) -> None:
        self.follower.start()
        if self.wallet is not None:
            self.wallet.start()
        try:
            if self.config.mode == "hosted":
                print(listening_line(self.config), file=sys.stderr, flush=True)
                uvicorn.run(
                    self.server.streamable_http_app(), host=self.config.host, port=self.config.port, log_level="warning"
                )
            else:
                self.server.run("stdio")
        finally:
            if self.wallet is not None:
                self.wallet.stop()
            self.follower.stop()
            self.store.close()


def listening_line(config: FrontConfig) -> str:
    base = config.base_url()
    return (f"genim-mcp hosted: listening on http://{config.host}:{config.port}; MCP (streamable HTTP) at {base}/mcp; "
            f"pay page at {base}/pay/<payment id>")  # fmt: skip


def index(config: FrontConfig):  # noqa: ANN201 - a Starlette route handler
    """`/`: what this server is and where its endpoints are, for a person who opens the bare address."""
    base = config.base_url()
    text = (f"GenImNFT paid image generator (MCP).\nMCP endpoint (streamable HTTP): {base}/mcp\n"
            f"Payment pages: {base}/pay/<payment id>\nTokens: {base}/token/<token id>\n")  # fmt: skip

    async def handler(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(text)

    return handler


def transport_security(config: FrontConfig) -> TransportSecuritySettings:
    """DNS-rebinding protection that also admits the public address buyers use (behind a reverse proxy)."""
    hosts, origins = ["127.0.0.1:*", "localhost:*", "[::1]:*"], ["http://127.0.0.1:*", "http://localhost:*"]
    if config.public_url:
        public = urlsplit(config.public_url)
        hosts.append(public.netloc)
        origins.append(f"{public.scheme}://{public.netloc}")
    if config.host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        hosts.append(f"{config.host}:{config.port}")
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def build(config: FrontConfig) -> Front:
    chain = Chain(config.rpc_uri, config.contract_address(), timeout=config.rpc_timeout)
    if not chain.has_code():
        raise ConfigError(f"no contract at {chain.address} on {config.rpc_uri}")
    store = Store(config.state_dir)
    follower = Follower(config, chain, store)
    wallet = None
    if config.mode == "local":
        assert config.account is not None
        wallet = LocalWallet(chain, store, load_account(config.account, config.passphrase_env))
    ipfs = IpfsClient(config.ipfs_api)
    server = PlainRefusals(
        "genimnft",
        instructions=INSTRUCTIONS + (local_instructions(config.local_rail) if config.mode == "local" else ""),
        host=config.host,
        port=config.port,
        log_level="WARNING",
        transport_security=transport_security(config),
    )
    base = config.base_url()
    hosted = config.mode == "hosted"

    def link(order: Order) -> str:
        if hosted:
            return f"{base}/pay/{order.id}"
        quote = provider.quote(order)  # local mode: the wallet pays; the URI shows what it sends
        return quote.eip681(chain.address, follower.facts.chain_id) if quote else f"payment {order.id}"

    provider = MintPaymentProvider(config, store, follower, link, wallet)
    delivery = Delivery(
        config, store, follower, chain, ipfs, lambda token_id: f"{base}/token/{token_id}" if hosted else None
    )
    # paymcp checks a payment every 3 s by default; the provider answers from memory, so ask more often.
    paymcp_progress.DEFAULT_POLL_SECONDS = config.payment_poll  # type: ignore[assignment]
    paymcp_progress.open_link_message = provider.link_message  # what really happens next, in this mode
    x402 = build_x402(config, chain, store, delivery, wallet.account if wallet else None)
    register_tools(server, provider, delivery, follower, x402)
    if hosted:
        server.custom_route("/", methods=["GET"])(index(config))
        for method, path, handler in PayPage(provider, ipfs, transport_security(config)).routes():
            server.custom_route(path, methods=[method])(handler)  # type: ignore[arg-type]
    return Front(config, server, follower, store, wallet)
