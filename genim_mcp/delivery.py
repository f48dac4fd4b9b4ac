"""After payment: follow the token to its image (or its deadline), and answer for any token later.

Waiting reads only the store the follower keeps. Reads that need the chain or IPFS (`get_image` for a token the
follower never saw, `refund_status`, the image bytes) run in worker threads, never on the event loop.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from mcp.server.fastmcp import Context
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from web3.exceptions import ContractLogicError

from genim_mcp.config import FrontConfig
from genim_mcp.follower import Follower
from genim_mcp.results import Receipt, aspect_label, fetch_image, image_result, preview_png, resolution_of
from genim_mcp.store import Store, TokenRecord
from genim_mcp.units import utc_text
from genimnft.contract import Asset, Chain, Status
from genimnft.ipfs import IpfsClient
from genimnft.metadata import cid_of_digest

WAIT_POLL = 0.2
TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
TOKEN_ID_BOUND = 2**63  # SQLite's integers; the contract's ids count up from 0 one mint at a time
T = TypeVar("T")


class Progress:
    """Progress after paymcp's own 100 (sent at payment): strictly increasing, one short message per stage."""

    def __init__(self, ctx: Context | None) -> None:
        self.ctx = ctx
        self.value = 100

    async def note(self, message: str) -> None:
        self.value += 1
        if self.ctx is not None:
            await self.ctx.report_progress(self.value, None, message)


@dataclass(frozen=True)
class Lookup:
    """A token as the chain has it now (read in a worker thread)."""

    status: Status
    deadline: int
    asset: Asset
    escrow: int
    digest: bytes
    holder: str | None
    chain_time: int


class Delivery:
    def __init__(
        self,
        config: FrontConfig,
        store: Store,
        follower: Follower,
        chain: Chain,
        ipfs: IpfsClient,
        refund_page: Callable[[int], str | None],
    ) -> None:
        self.config = config
        self.store = store
        self.follower = follower
        self.chain = chain
        self.ipfs = ipfs
        self.refund_page = refund_page

    async def deliver(self, order_id: str, progress: Progress) -> CallToolResult:
        order = self.store.order(order_id)
        assert order is not None and order.token_id is not None, "delivery starts once the payment is settled"
        return await self.deliver_token(order.token_id, order.mint_tx, progress)

    async def deliver_token(self, token_id: int, mint_tx: str | None, progress: Progress) -> CallToolResult:
        """The image of a paid token once it is set; ToolError naming the refund if its deadline passes first."""
        await progress.note(f"paid: token {token_id} minted in tx {mint_tx}")
        token = self._token_or_fail(token_id)
        await progress.note(f"generating: the oracle has until {utc_text(token.deadline)} (chain time)")
        started = last_note = time.monotonic()
        while token.digest is None:
            if token.refund_tx is not None or self._deadline_passed(token):
                raise ToolError(self.refund_help(token.token_id, token.deadline, Asset(token.asset), token.escrow))
            if time.monotonic() - last_note >= self.config.progress_every:
                last_note = time.monotonic()
                await progress.note(f"generating: {last_note - started:.0f} s so far")
            await anyio.sleep(WAIT_POLL)
            token = self._token_or_fail(token_id)
        await progress.note(f"image set in tx {token.set_image_tx}; fetching it from IPFS")
        result = await self._result(token.token_id, token.digest, token.mint_tx, token.set_image_tx)
        await progress.note("done")
        self.store.delivered(token_id, time.time())
        return result

    def _token_or_fail(self, token_id: int) -> TokenRecord:
        token = self.store.token(token_id)
        if token is None:
            raise ToolError(f"token {token_id} paid for this call but is missing from the index")
        return token

    def _deadline_passed(self, token: TokenRecord) -> bool:
        """Definitive: every block up to one at or past the deadline is scanned, and no image was set in them
        (setImage needs `block.timestamp < deadline`)."""
        cursor = self.store.cursor()
        return cursor is not None and cursor[1] >= token.deadline

    def check_token_id(self, token_id: int) -> None:
        """Ids the contract never issues (it counts up from 0; the index keeps 64-bit ids) get one plain line."""
        if not 0 <= token_id < TOKEN_ID_BOUND:
            raise ToolError(f"{token_id} is not a token of this contract ({self.chain.address}); nothing was paid")

    async def token_of_mint(self, tx_hash: str) -> int:
        """The token a mint transaction created: from the index, else from its receipt on the chain."""
        if not TX_HASH.fullmatch(tx_hash):
            raise ToolError(f"{tx_hash!r} is not a transaction hash (0x and 64 hex digits); nothing was paid")
        token = self.store.token_of_mint(tx_hash)
        if token is not None:
            return token.token_id

        minted = await _in_thread(lambda: self.chain.minted_by(tx_hash))
        if minted is None:
            raise ToolError(
                f"transaction {tx_hash} minted no token of contract {self.chain.address} (not mined yet, reverted, "
                "or not a mint); nothing was paid"
            )
        return minted

    async def get_image(self, token_id: int) -> CallToolResult:
        self.check_token_id(token_id)
        token = self.store.token(token_id)
        if token is not None and token.digest is not None:
            result = await self._result(token_id, token.digest, token.mint_tx, token.set_image_tx)
            self.store.delivered(token_id, time.time())
            return result
        lookup = await self._lookup(token_id)
        if lookup.status == Status.FULFILLED:  # set, but the follower has not read that far yet
            first = token.block_number if token else (self.config.first_block() or 0)
            set_tx = await _in_thread(lambda: self._image_set_tx(token_id, first))
            return await self._result(token_id, lookup.digest, token.mint_tx if token else None, set_tx)
        if lookup.status == Status.NONE:
            raise ToolError(f"there is no token {token_id} with a request on contract {self.chain.address}")
        if lookup.status == Status.REFUNDED:
            raise ToolError(f"token {token_id} was refunded: its escrow went back to the holder; no image exists")
        if lookup.chain_time >= lookup.deadline:
            raise ToolError(self.refund_help(token_id, lookup.deadline, lookup.asset, lookup.escrow))
        return _json_result(
            {
                "token_id": token_id,
                "status": "generating",
                "deadline": lookup.deadline,
                "seconds_left": lookup.deadline - lookup.chain_time,
                "next": f"call get_image({token_id}) again",
            }
        )

    def tokens_document(self, requester: str) -> dict:
        """my_tokens' answer: every token `requester` minted that the index has, with where it stands."""
        cursor = self.store.cursor()
        scanned_time = cursor[1] if cursor else 0
        undelivered = {token_id for _order_id, token_id in self.store.undelivered(requester)}

        def status(token: TokenRecord) -> str:
            if token.refund_tx:
                return "refunded"
            if token.digest is not None:
                return "image set"
            return "refundable" if scanned_time >= token.deadline else "generating"

        return {
            "account": requester,
            "tokens": [
                {
                    "token_id": token.token_id,
                    "status": status(token),
                    "tier": token.tier,
                    "aspect_ratio": aspect_label(token.aspect),
                    "prompt": token.prompt,
                    "mint_tx": token.mint_tx,
                    "deadline": utc_text(token.deadline),
                    "paid_here_not_delivered": token.token_id in undelivered,
                    "next": f"get_image({token.token_id})",
                }
                for token in self.store.tokens_of(requester)
            ],
        }

    async def refund_status(self, token_id: int) -> CallToolResult:
        self.check_token_id(token_id)
        lookup = await self._lookup(token_id)
        document: dict[str, object] = {
            "token_id": token_id,
            "status": lookup.status.name.lower(),
            "deadline": lookup.deadline,
            "chain_time": lookup.chain_time,
            "asset": lookup.asset.name,
            "escrow": lookup.asset.amount_text(lookup.escrow),
            "escrow_units": str(lookup.escrow),
            "holder": lookup.holder,
        }
        refundable = lookup.status == Status.PENDING and lookup.chain_time >= lookup.deadline
        document["refundable"] = refundable
        if refundable:
            document["how"] = self.refund_help(token_id, lookup.deadline, lookup.asset, lookup.escrow)
        elif lookup.status == Status.PENDING:
            document["how"] = (
                f"not yet: refundable from {utc_text(lookup.deadline)} (chain time) if no image is set "
                f"by then, {lookup.deadline - lookup.chain_time} s from now"
            )
        else:
            document["how"] = {
                Status.FULFILLED: "not refundable: the image is set (get_image)",
                Status.REFUNDED: "already refunded to the holder",
                Status.NONE: "no such request",
            }[lookup.status]
        return _json_result(document)

    def _image_set_tx(self, token_id: int, first: int) -> str | None:
        event = self.chain.contract.events.ImageSet()
        logs = event.get_logs(from_block=first, argument_filters={"tokenId": token_id})
        return logs[-1]["transactionHash"].to_0x_hex() if logs else None

    def refund_help(self, token_id: int, deadline: int, asset: Asset, escrow: int) -> str:
        contract, page = self.chain.address, self.refund_page(token_id)
        where = f"open {page} and press Refund, or " if page else ""
        return (
            f"token {token_id} got no image before its deadline ({utc_text(deadline)}, chain time). Its escrow of "
            f"{asset.amount_text(escrow)} goes back to the token's holder with refund({token_id}), which anyone may "
            "call: "
            f"{where}send it yourself: cast send {contract} 'refund(uint256)' {token_id} --rpc-url <your RPC> "
            f"(chain id {self.follower.facts.chain_id})"
        )

    async def _result(self, token_id: int, digest: bytes, mint_tx: str | None, set_tx: str | None) -> CallToolResult:
        metadata, image_cid, png = await _in_thread(lambda: fetch_image(self.ipfs, digest))
        preview, preview_note = await _in_thread(lambda: preview_png(png, self.config.preview_max_px))
        token = self.store.token(token_id)
        facts = self.follower.facts
        receipt = Receipt(
            token_id=token_id,
            token_uri=f"ipfs://{cid_of_digest(digest)}",
            image=f"ipfs://{image_cid}",
            gateway_url=f"{self.config.gateway_url.rstrip('/')}/ipfs/{image_cid}",
            mint_tx=mint_tx,
            set_image_tx=set_tx,
            tier=token.tier if token else -1,
            aspect_ratio=aspect_label(token.aspect) if token else "unknown",
            prompt=metadata.get("description", ""),
            resolution=resolution_of(metadata),
            chain_id=facts.chain_id,
            contract=facts.contract,
            preview=preview_note,
        )
        return image_result(receipt, preview)

    async def _lookup(self, token_id: int) -> Lookup:
        def read() -> Lookup:
            request = self.chain.request(token_id)
            try:
                holder: str | None = self.chain.contract.functions.ownerOf(token_id).call()
            except ContractLogicError:
                holder = None
            return Lookup(
                request.status,
                request.deadline,
                request.asset,
                request.escrow,
                request.metadata_digest,
                holder,
                self.chain.timestamp(),
            )

        return await _in_thread(read)


async def _in_thread(work: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(work)


def _json_result(document: dict) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(document, ensure_ascii=False))])
