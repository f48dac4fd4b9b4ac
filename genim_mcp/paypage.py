"""The pay page (hosted mode), served by the MCP server's own process on its own port.

`/pay/<payment id>` shows one call's terms and price (dollars first, then ETH at the contract's current rate),
connects an injected EIP-1193 wallet, switches or adds the chain, sends the exact mint (calldata built here: the
oracle epoch the front read and the payment's tag; value: the price now plus the rate margin, the excess comes
back) and follows it: paid, generating, the image with its IPFS link, or after the deadline a Refund button. It
reports the mint's transaction hash, so that a mint that reverts is reported as such (with what it cost: gas only)
and the call's fresh payment, if any, is linked. An EIP-681 `ethereum:` URI and its QR code serve phone wallets.
`/token/<id>` is the same page for any token (its status and refund). Everything the page loads comes from this
process; the status it polls is read from the follower's store, never from the chain. Every route checks the Host
header (and a POST's Origin) as `/mcp` does; `/api/tokens/<id>` carries no payment id; a token id past SQLite's
range is a 404; the QR code is rendered in a worker thread, once per payment and URI.
"""

from __future__ import annotations

import html
import io
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from importlib import resources

import anyio
import qrcode
import qrcode.exceptions
import qrcode.image.svg
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from genim_mcp.calldata import refund_calldata
from genim_mcp.config import FrontConfig
from genim_mcp.follower import Follower
from genim_mcp.provider import MintPaymentProvider
from genim_mcp.results import aspect_label, fetch_image
from genim_mcp.store import Order, Store, TokenRecord
from genim_mcp.terms import TIER_NAMES
from genim_mcp.units import eth_exact, eth_text, rate_text, usd_text
from genimnft.contract import Asset
from genimnft.ipfs import IpfsClient
from genimnft.metadata import cid_of_digest

STATIC = resources.files("genim_mcp") / "static"
STATIC_TYPES = {"pay.js": "text/javascript", "pay.css": "text/css", "favicon.svg": "image/svg+xml"}
TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
TOKEN_NAMED = re.compile(r"\btoken (\d+)")  # the token a failure's (mismatched) mint or a notice's mint became
MAX_TOKEN_ID = 2**63 - 1  # SQLite's INTEGER; the contract counts up from 1, so a larger id is no token of it
QR_CACHE_SIZE = 256
Handler = Callable[[Request], Awaitable[Response]]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PayPage:
    def __init__(
        self, provider: MintPaymentProvider, ipfs: IpfsClient, security: TransportSecuritySettings | None = None
    ) -> None:
        self.provider = provider
        self.config: FrontConfig = provider.config
        self.store: Store = provider.store
        self.follower: Follower = provider.follower
        self.ipfs = ipfs
        self._image_cids: dict[int, str] = {}  # token id -> its image's CID, once set
        self._qr: OrderedDict[str, tuple[str, bytes]] = OrderedDict()  # payment id -> (its URI, that URI's SVG)
        self._qr_lock = anyio.Lock()  # one render at a time, so that clients asking at once share it
        # DNS-rebinding protection, as the MCP transport has it for /mcp: the same hosts and origins.
        self._security = TransportSecurityMiddleware(security) if security is not None else None

    def routes(self) -> list[tuple[str, str, Handler]]:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/pay/{order_id}", self.order_page),
            ("GET", "/token/{token_id:int}", self.token_page),
            ("GET", "/tx/{tx_hash}", self.mint_lookup),
            ("GET", "/api/orders/{order_id}", self.order_status),
            ("POST", "/api/orders/{order_id}/mint", self.mint_sent),
            ("GET", "/api/tokens/{token_id:int}", self.token_status),
            ("GET", "/images/{token_id:int}.png", self.image),
            ("GET", "/qr/{order_id}.svg", self.qr),
            ("GET", "/static/{name}", self.static),
            ("GET", "/favicon.ico", self.favicon),
        ]
        return [(method, path, self._checked(handler, method == "POST")) for method, path, handler in routes]

    def _checked(self, handler: Handler, is_post: bool) -> Handler:
        async def checked(request: Request) -> Response:
            if self._security is not None:
                refusal = await self._security.validate_request(request, is_post=is_post)
                if refusal is not None:
                    return refusal
            return await handler(request)

        return checked

    # -- pages ----------------------------------------------------------------------------------------------

    async def order_page(self, request: Request) -> Response:
        order = self.store.order(request.path_params["order_id"])
        if order is None:
            return not_found_page("No such payment", "This payment link is not known here: it may be mistyped.")
        boot = {"status_url": f"/api/orders/{order.id}", "qr_url": f"/qr/{order.id}.svg"}
        return self._page(boot, self._noscript(self._order_part(order)))

    async def token_page(self, request: Request) -> Response:
        token_id = _token_id(request)
        if token_id is None:
            return not_found_page("No such token", "That number is not a token of this contract.")
        noscript = (
            "<p>This page follows the token as it changes, which needs JavaScript. Its status as data: "
            f'<a href="/api/tokens/{token_id}">/api/tokens/{token_id}</a>.</p>'
        )
        return self._page({"status_url": f"/api/tokens/{token_id}", "qr_url": None}, noscript)

    async def mint_lookup(self, request: Request) -> Response:
        """`/tx/<mint transaction hash>`: the token that transaction minted, for a buyer who has only the hash (the
        call ended before it said "paid: token N"): from the index, else from the receipt on the chain."""
        tx_hash = request.path_params["tx_hash"]
        if not TX_HASH.fullmatch(tx_hash):
            return not_found_page("No such transaction", "That is not a transaction hash (0x and 64 hex digits).")
        token = self.store.token_of_mint(tx_hash)
        chain = self.follower.chain
        token_id = token.token_id if token is not None else await anyio.to_thread.run_sync(chain.minted_by, tx_hash)
        if token_id is None:
            return not_found_page(
                "No token for this transaction",
                "That transaction minted no token here: it may not be mined yet, it may have been refused, or it "
                "may not be a payment to this contract. Nothing was charged for a refused one but its network fee.",
            )
        return RedirectResponse(f"/token/{token_id}", status_code=303, headers=SECURITY_HEADERS)

    def _page(self, boot: dict, noscript: str) -> Response:
        template = (STATIC / "pay.html").read_text()
        # JSON inside <script type="application/json">: no "<" may end the element early.
        page = template.replace("{{BOOT}}", json.dumps(boot).replace("<", "\\u003c"))
        page = page.replace("{{NOSCRIPT}}", f'<noscript><section class="card">{noscript}</section></noscript>')
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    @staticmethod
    def _noscript(order: dict) -> str:
        """With JavaScript off: the terms and the payment link a wallet app opens, written by the server."""
        rows = [
            ("Your prompt (public and permanent on-chain)", order["prompt"]),
            ("Quality", order["tier_name"]),
            ("Shape", order["aspect_ratio"]),
            ("Price", f"{order['price_usd']} in ETH, plus the network fee"),
            ("Link open until", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(order["expires_at"]))),
        ]
        terms = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
        if order["state"] != "awaiting":
            link = f"<p>This payment link is no longer open ({html.escape(order['state'])}).</p>"
        elif order["eip681"] is None:
            link = f"<p>Paying in ETH is closed right now: {html.escape(str(order['eth_unavailable']))}.</p>"
        else:
            href = html.escape(order["eip681"], quote=True)
            link = f'<p><a class="button" href="{href}">Pay with a wallet app</a></p>'

        return (
            f"<h2>What you buy</h2><dl>{terms}</dl>{link}<p>Paying with a browser wallet, and following the "
            "payment here, needs JavaScript.</p>"
        )

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES:
            return Response("not found", status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=STATIC_TYPES[name], headers=SECURITY_HEADERS)

    async def favicon(self, _request: Request) -> Response:
        return Response((STATIC / "favicon.svg").read_bytes(), media_type="image/svg+xml", headers=SECURITY_HEADERS)

    async def qr(self, request: Request) -> Response:
        """The EIP-681 URI as a QR code, rendered in a worker thread (0.3-0.5 s for a long prompt), one render at a
        time, and kept per payment while its URI (the value moves with the rate) stays the same."""
        order = self.store.order(request.path_params["order_id"])
        quote = self.provider.quote(order) if order is not None else None
        if order is None or quote is None:
            return Response("not found", status_code=404)
        facts = self.follower.facts
        uri = quote.eip681(facts.contract, facts.chain_id)
        async with self._qr_lock:
            cached = self._qr.get(order.id)
            if cached is None or cached[0] != uri:
                try:
                    svg = await anyio.to_thread.run_sync(lambda: _qr_svg(uri))
                except qrcode.exceptions.DataOverflowError:
                    return Response("the payment URI is too long for a QR code", status_code=404)
                self._qr[order.id] = cached = (uri, svg)
                while len(self._qr) > QR_CACHE_SIZE:
                    self._qr.popitem(last=False)
            self._qr.move_to_end(order.id)
        return Response(cached[1], media_type="image/svg+xml", headers=SECURITY_HEADERS)

    async def image(self, request: Request) -> Response:
        token_id = _token_id(request)
        token = self.store.token(token_id) if token_id is not None else None
        if token is None or token.digest is None:
            return Response("no image yet", status_code=404)
        digest = token.digest
        _metadata, _cid, png = await anyio.to_thread.run_sync(lambda: fetch_image(self.ipfs, digest))
        return Response(png, media_type="image/png", headers=SECURITY_HEADERS)

    # -- status documents -----------------------------------------------------------------------------------

    async def order_status(self, request: Request) -> Response:
        order = self.store.order(request.path_params["order_id"])
        if order is None:
            return JSONResponse({"error": "no such payment"}, status_code=404)
        self.store.payment_status(order.id, _now())  # marks it expired when due
        order = self.store.order(order.id)
        assert order is not None
        token = self.store.token(order.token_id) if order.token_id is not None else None
        return await self._document(order, token)

    async def mint_sent(self, request: Request) -> Response:
        """The page reports the hash its wallet returned; the follower checks it is this payment's mint, and if it
        reverted says why and what it cost."""
        order = self.store.order(request.path_params["order_id"])
        try:
            tx_hash = str((await request.json())["tx"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'expected {"tx": "0x<64 hex digits>"}'}, status_code=400)
        if order is None:
            return JSONResponse({"error": "no such payment"}, status_code=404)
        if not TX_HASH.fullmatch(tx_hash):
            return JSONResponse({"error": 'expected {"tx": "0x<64 hex digits>"}'}, status_code=400)
        return JSONResponse({"recorded": self.store.report_mint(order.id, tx_hash.lower())})

    async def token_status(self, request: Request) -> Response:
        """Anyone may read a token's status: its order's terms come without the payment id, the calldata (which
        ends with it) and the call's other links."""
        token_id = _token_id(request)
        token = self.store.token(token_id) if token_id is not None else None
        if token_id is None or token is None:
            return JSONResponse(
                {"error": "No such token: that number is not (yet) a token of this contract."}, status_code=404
            )
        return await self._document(self.store.order_of_token(token_id), token, public=True)

    async def _document(self, order: Order | None, token: TokenRecord | None, public: bool = False) -> Response:
        facts, config = self.follower.facts, self.config
        document: dict[str, object] = {
            "chain": {
                "id": facts.chain_id,
                "id_hex": hex(facts.chain_id),
                "name": config.chain_name,
                "rpc": config.public_rpc_uri,
                "explorer": config.explorer_url,
            },
            "contract": facts.contract,
            "chain_time": facts.head_timestamp,
            "order": self._order_part(order, public) if order else None,
            "token": await self._token_part(token, facts.head_timestamp) if token else None,
        }
        document["stage"] = _stage(document)
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    def _order_part(self, order: Order, public: bool = False) -> dict:
        facts = self.follower.facts
        prices, quote = facts.prices, self.provider.quote(order)
        wei = prices.wei[order.tier] if prices.wei is not None else None
        rate = prices.usd_per_eth()
        failed_token = TOKEN_NAMED.search(order.failure or "")
        notice_token = TOKEN_NAMED.search(order.notice or "")
        part = {
            "id": order.id,
            "tier": order.tier,
            "tier_name": TIER_NAMES[order.tier],
            "aspect_ratio": aspect_label(order.aspect),
            "style": order.style,
            "prompt": order.prompt,
            # What a mint is charged now: the tier's dollar price (the contract's) at the contract's rate.
            "price_usd": usd_text(prices.usd[order.tier]),
            "price_eth": eth_text(wei) if wei is not None else None,
            "price_wei": str(wei) if wei is not None else None,
            "usd_per_eth": rate_text(rate) if rate is not None else None,
            "eth_unavailable": prices.eth_unavailable,
            "margin_percent": self.config.price_margin_bps / 100,
            "max_eth": eth_exact(quote.value_wei) if quote else None,
            "expires_at": order.expires_at,
            "seconds_left": max(0, round(order.expires_at - _now())),
            "oracle_seconds": facts.timeout,  # how long the oracle has for the image once the mint is confirmed
            "confirmations": self.config.required_confirmations(),
            "state": order.state,
            "failure": order.failure,
            "failure_token_url": f"/token/{failed_token[1]}" if failed_token else None,
            # A mint of exactly these terms that carried no proof of this payment: it pays no call.
            "notice": order.notice,
            "notice_token_url": f"/token/{notice_token[1]}" if notice_token else None,
            "renewed_by": f"/pay/{order.renewed_by}" if order.renewed_by else None,
            "mint_tx": order.mint_tx,
            "oracle_epoch": order.oracle_epoch,
            "mint": {
                "to": facts.contract,
                "value": hex(quote.value_wei),
                "data": "0x" + quote.calldata(bytes.fromhex(order.id)).hex(),
            }
            if quote
            else None,
            "eip681": quote.eip681(facts.contract, facts.chain_id) if quote else None,
        }
        if public:
            for private in ("id", "renewed_by", "mint", "eip681"):
                del part[private]
        return part

    async def _token_part(self, token: TokenRecord, chain_time: int) -> dict:
        asset = Asset(token.asset)
        part: dict[str, object] = {
            "token_id": token.token_id,
            "deadline": token.deadline,
            "escrow": asset.amount_text(0 if token.refund_tx else token.escrow),
            "refunded": asset.amount_text(token.escrow) if token.refund_tx else None,
            "mint_tx": token.mint_tx,
            "set_image_tx": token.set_image_tx,
            "refund_tx": token.refund_tx,
        }
        if token.digest is not None:
            image_cid = await self._image_cid(token.token_id, token.digest)
            part.update(
                state="image",
                image_url=f"/images/{token.token_id}.png",
                download_name=f"genimnft-{token.token_id}.png",
                token_uri=f"ipfs://{cid_of_digest(token.digest)}",
                ipfs_uri=f"ipfs://{image_cid}",
                gateway_url=f"{self.config.gateway_url.rstrip('/')}/ipfs/{image_cid}",
            )
        elif token.refund_tx is not None:
            part["state"] = "refunded"
        elif chain_time >= token.deadline:
            part.update(
                state="refundable",
                refund={"to": self.follower.facts.contract, "data": "0x" + refund_calldata(token.token_id).hex()},
            )
        else:
            part["state"] = "generating"
        return part

    async def _image_cid(self, token_id: int, digest: bytes) -> str:
        if token_id not in self._image_cids:
            metadata = await anyio.to_thread.run_sync(lambda: json.loads(self.ipfs.cat(cid_of_digest(digest))))
            self._image_cids[token_id] = metadata["image"].removeprefix("ipfs://")
        return self._image_cids[token_id]


def _stage(document: dict) -> str:
    """One word for the page's progress line: awaiting, sent (a mint reported, not yet confirmed), paid,
    generating, image, refundable, refunded, expired, failed."""
    token, order = document["token"], document["order"]
    if token is not None:
        return str(token["state"])
    if order["state"] == "awaiting" and order["mint_tx"]:
        return "sent"
    return str(order["state"])


def _token_id(request: Request) -> int | None:
    """The path's token id, or None when it is past what any token of the contract (or SQLite) can be."""
    token_id = int(request.path_params["token_id"])
    return token_id if 0 < token_id <= MAX_TOKEN_ID else None


def _qr_svg(uri: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(out)
    return out.getvalue()


def not_found_page(title: str, message: str) -> HTMLResponse:
    page = (STATIC / "notfound.html").read_text()
    page = page.replace("{{TITLE}}", html.escape(title)).replace("{{MESSAGE}}", html.escape(message))
    return HTMLResponse(page, status_code=404, headers=SECURITY_HEADERS)


def _now() -> float:
    return time.time()
