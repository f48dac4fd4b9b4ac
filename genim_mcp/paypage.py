"""The pay page (hosted mode), served by the MCP server's own process on its own port.

`/pay/<payment id>` shows one call's terms and price, connects an injected EIP-1193 wallet, switches or adds the
chain, sends the exact mint (calldata built here, tag included) and follows it: paid, generating, the image with
its IPFS link, or after the deadline a Refund button. An EIP-681 `ethereum:` URI and its QR code serve phone
wallets. `/token/<id>` is the same page for any token (its status and refund). Everything the page loads comes
from this process; the status it polls is read from the follower's store, never from the chain.
"""

from __future__ import annotations

import io
import json
import time
from importlib import resources

import anyio
import qrcode
import qrcode.exceptions
import qrcode.image.svg
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from genim_mcp.calldata import eip681_mint_uri, mint_calldata, refund_calldata
from genim_mcp.config import FrontConfig
from genim_mcp.follower import Follower
from genim_mcp.pricing import eth_text
from genim_mcp.results import aspect_label, fetch_image
from genim_mcp.store import Order, Store, TokenRecord
from genim_mcp.terms import TIER_NAMES, ImageTerms
from genimnft.aspects import Aspect
from genimnft.ipfs import IpfsClient
from genimnft.metadata import cid_of_digest

STATIC = resources.files("genim_mcp") / "static"
STATIC_TYPES = {"pay.js": "text/javascript", "pay.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PayPage:
    def __init__(self, config: FrontConfig, store: Store, follower: Follower, ipfs: IpfsClient) -> None:
        self.config = config
        self.store = store
        self.follower = follower
        self.ipfs = ipfs
        self._image_cids: dict[int, str] = {}  # token id -> its image's CID, once set

    def routes(self) -> list[tuple[str, object]]:
        return [
            ("/pay/{order_id}", self.order_page),
            ("/token/{token_id:int}", self.token_page),
            ("/api/orders/{order_id}", self.order_status),
            ("/api/tokens/{token_id:int}", self.token_status),
            ("/images/{token_id:int}.png", self.image),
            ("/qr/{order_id}.svg", self.qr),
            ("/static/{name}", self.static),
        ]

    # -- pages ----------------------------------------------------------------------------------------------

    async def order_page(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if self.store.order(order_id) is None:
            return _html("No such payment: the link may be mistyped.", status=404)
        return self._page({"status_url": f"/api/orders/{order_id}", "qr_url": f"/qr/{order_id}.svg"})

    async def token_page(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        return self._page({"status_url": f"/api/tokens/{token_id}", "qr_url": None})

    def _page(self, boot: dict) -> Response:
        template = (STATIC / "pay.html").read_text()
        # JSON inside <script type="application/json">: no "<" may end the element early.
        page = template.replace("{{BOOT}}", json.dumps(boot).replace("<", "\\u003c"))
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES:
            return Response("not found", status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=STATIC_TYPES[name], headers=SECURITY_HEADERS)

    async def qr(self, request: Request) -> Response:
        order = self.store.order(request.path_params["order_id"])
        if order is None:
            return Response("not found", status_code=404)
        try:
            image = qrcode.make(self._eip681(order), image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
        except qrcode.exceptions.DataOverflowError:
            return Response("the payment URI is too long for a QR code", status_code=404)
        out = io.BytesIO()
        image.save(out)
        return Response(out.getvalue(), media_type="image/svg+xml", headers=SECURITY_HEADERS)

    async def image(self, request: Request) -> Response:
        token = self.store.token(request.path_params["token_id"])
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

    async def token_status(self, request: Request) -> Response:
        token_id = request.path_params["token_id"]
        token = self.store.token(token_id)
        if token is None:
            return JSONResponse({"error": f"token {token_id} is not (yet) known to this server"}, status_code=404)
        return await self._document(self.store.order_of_token(token_id), token)

    async def _document(self, order: Order | None, token: TokenRecord | None) -> Response:
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
            "order": self._order_part(order) if order else None,
            "token": await self._token_part(token, facts.head_timestamp) if token else None,
        }
        document["stage"] = _stage(document)
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    def _order_part(self, order: Order) -> dict:
        usd = self.follower.facts.usd
        return {
            "id": order.id,
            "tier": order.tier,
            "tier_name": TIER_NAMES[order.tier],
            "aspect_ratio": aspect_label(order.aspect),
            "style": order.style,
            "prompt": order.prompt,
            "price_wei": str(order.price_wei),
            "price_eth": eth_text(order.price_wei),
            "price_usd": str(usd.usd(order.price_wei)),
            "usd_note": usd.note,
            "expires_at": order.expires_at,
            "seconds_left": max(0, round(order.expires_at - _now())),
            "state": order.state,
            "failure": order.failure,
            "mint_tx": order.mint_tx,
            "mint": {
                "to": self.follower.facts.contract,
                "value": hex(order.price_wei),
                "data": "0x" + mint_calldata(_terms(order), bytes.fromhex(order.id)).hex(),
            },
            "eip681": self._eip681(order),
        }

    async def _token_part(self, token: TokenRecord, chain_time: int) -> dict:
        part: dict[str, object] = {
            "token_id": token.token_id,
            "deadline": token.deadline,
            "escrow_eth": eth_text(token.escrow_wei),
            "mint_tx": token.mint_tx,
            "set_image_tx": token.set_image_tx,
            "refund_tx": token.refund_tx,
        }
        if token.digest is not None:
            image_cid = await self._image_cid(token.token_id, token.digest)
            part.update(
                state="image",
                image_url=f"/images/{token.token_id}.png",
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

    def _eip681(self, order: Order) -> str:
        facts = self.follower.facts
        return eip681_mint_uri(facts.contract, facts.chain_id, _terms(order), order.price_wei)


def _stage(document: dict) -> str:
    """One word for the page's progress line: awaiting, paid, generating, image, refundable, refunded, expired,
    failed."""
    token, order = document["token"], document["order"]
    return str(token["state"] if token is not None else order["state"])


def _terms(order: Order) -> ImageTerms:
    return ImageTerms(order.tier, Aspect(order.aspect), order.style, order.prompt)


def _html(message: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>GenImNFT</title><p>{message}</p>", status_code=status, headers=SECURITY_HEADERS
    )


def _now() -> float:
    return time.time()
