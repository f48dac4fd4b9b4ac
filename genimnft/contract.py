"""Reading the contract: request and image events in bounded ranges, and each token's request as it is now."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TypeVar

from eth_abi import decode
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3Exception
from web3.logs import DISCARD

from genimnft.metadata import decode_prompt

ABI = json.loads((Path(__file__).parent / "GenImNFT.abi.json").read_text())
REQUESTED_SIGNATURE = "ImageRequested(uint256,address,uint8,uint8,uint8,uint256,uint40,string)"
IMAGE_SET_SIGNATURE = "ImageSet(uint256,address,bytes32,uint8,uint256,uint256)"
log = logging.getLogger("genim.chain")
T = TypeVar("T")


class Status(IntEnum):
    NONE = 0
    PENDING = 1
    FULFILLED = 2
    REFUNDED = 3


class Asset(IntEnum):
    """What an escrow is paid and held in: ETH in wei, USDC in its base units (6 decimals)."""

    ETH = 0
    USDC = 1

    @property
    def decimals(self) -> int:
        return 18 if self is Asset.ETH else 6

    def amount_text(self, units: int) -> str:
        """`units` in whole ETH or dollars of USDC ("0.000033334 ETH", "0.3 USDC")."""
        whole, fraction = divmod(units, 10**self.decimals)
        digits = str(fraction).rjust(self.decimals, "0").rstrip("0")
        return f"{whole}{'.' + digits if digits else ''} {self.name}"


@dataclass(frozen=True)
class OnChainRequest:
    status: Status
    tier: int
    aspect: int
    asset: Asset
    deadline: int
    escrow: int  # in the asset's base units
    metadata_digest: bytes


@dataclass(frozen=True)
class RequestEvent:
    """A request as its `ImageRequested` event binds it: the terms the buyer paid for."""

    token_id: int
    tier: int
    aspect: int
    prompt: str
    requester: str
    escrow: int  # in `asset`'s base units
    deadline: int
    block_number: int
    block_hash: str
    mint_tx: str = ""
    asset: Asset = Asset.ETH


@dataclass(frozen=True)
class ImageSetEvent:
    token_id: int
    oracle: str
    metadata_digest: bytes
    payment: int  # in `asset`'s base units, like the fee
    fee: int
    block_number: int
    block_hash: str
    tx_hash: str
    asset: Asset = Asset.ETH


class Chain:
    """One contract on one RPC endpoint. Every call has the provider's timeout."""

    def __init__(self, rpc_uri: str, address: str, timeout: float = 15.0) -> None:
        # No retries inside web3: the caller's loop retries, and a call must not outlast a SIGTERM.
        provider = Web3.HTTPProvider(rpc_uri, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self.w3 = Web3(provider)
        self.contract: Contract = self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=ABI)
        self._requested_topic = self.w3.keccak(text=REQUESTED_SIGNATURE)
        self._image_set_topic = self.w3.keccak(text=IMAGE_SET_SIGNATURE)

    @property
    def address(self) -> str:
        return self.contract.address

    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def head(self) -> int:
        return self.w3.eth.block_number

    def timestamp(self, block: str | int = "latest") -> int:
        return self.w3.eth.get_block(block)["timestamp"]

    def block_hash(self, number: int) -> str | None:
        try:
            return self.w3.eth.get_block(number)["hash"].hex()
        except BlockNotFound:
            return None

    def minted_by(self, tx_hash: str) -> int | None:
        """The token a transaction minted, from its receipt; None if it is unknown, not mined, or minted none."""
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        events = self.contract.events.ImageRequested().process_receipt(receipt, errors=DISCARD)
        return events[0]["args"]["tokenId"] if events else None

    def has_code(self) -> bool:
        return len(self.w3.eth.get_code(self.contract.address)) > 0

    def is_oracle(self, account: str) -> bool:
        return self.contract.functions.isOracle(account).call()

    def serves_from(self, account: str) -> int:
        """The first token id `account` may settle (consent at mint); 0 if it is not an authorised oracle."""
        return self.contract.functions.servesFrom(account).call()

    def credit(self, account: str) -> int:
        """ETH credit in wei that `withdraw` would pay `account` now."""
        return self.contract.functions.credit(account).call()

    def usdc_credit(self, account: str) -> int:
        """USDC credit in USDC units that `withdraw` would pay `account` now."""
        return self.contract.functions.usdcCredit(account).call()

    def credits(self, account: str) -> dict[Asset, int]:
        """`account`'s credit in each asset, in its base units."""
        return {Asset.ETH: self.credit(account), Asset.USDC: self.usdc_credit(account)}

    def price(self, tier: int) -> int:
        """The tier's price in US dollars with 6 decimals (what a USDC mint pays); 0 if not on sale."""
        return self.contract.functions.price(tier).call()

    def price_in_wei(self, tier: int) -> int:
        """What an ETH mint of `tier` is charged now, at Chainlink's rate; reverts while the feed is unusable."""
        return self.contract.functions.priceInWei(tier).call()

    def oracle_epoch(self) -> int:
        """The oracle epoch a mint must name now (bumped by each oracle authorisation)."""
        return self.contract.functions.oracleEpoch().call()

    def timeout(self) -> int:
        return self.contract.functions.timeout().call()

    def request(self, token_id: int) -> OnChainRequest:
        status, tier, aspect, asset, deadline, escrow, digest = self.contract.functions.request(token_id).call()
        return OnChainRequest(Status(status), tier, aspect, Asset(asset), deadline, escrow, bytes(digest))

    def requests_between(self, first: int, last: int, max_range: int) -> list[RequestEvent]:
        """ImageRequested logs in [first, last], in ranges of at most `max_range` blocks that halve on error."""
        return self._logs(self._requested_topic, first, last, max_range, _request_event)

    def images_set_between(self, first: int, last: int, max_range: int) -> list[ImageSetEvent]:
        """ImageSet logs in [first, last], likewise."""
        return self._logs(self._image_set_topic, first, last, max_range, _image_set_event)

    def image_set(self, token_id: int, first: int, max_range: int) -> ImageSetEvent | None:
        """The ImageSet event of one token (who set it, in which transaction), searched from block `first`."""
        topics = [self._image_set_topic, token_id.to_bytes(32, "big")]
        events = self._logs(self._image_set_topic, first, self.head(), max_range, _image_set_event, topics)
        return events[-1] if events else None

    def requests_proven(self, first: int, last: int, max_range: int) -> tuple[list[RequestEvent], int]:
        """ImageRequested logs in [first, last], as far as the answering node proves it holds the blocks: each
        range's logs come in one JSON-RPC batch (one node answers it) with the range's last block, so a node that
        lags behind a load balancer answers "no such block" instead of an innocent empty range, and the scan
        stops there. Returns the events and the last block proven (first - 1 if none)."""
        found: list[RequestEvent] = []
        start, span = first, max_range
        while start <= last:
            end = min(last, start + span - 1)
            block, logs = self._logs_with_block(start, end)
            if logs is None:
                if span == 1:
                    raise ValueError(f"eth_getLogs failed for block {start}")
                span = max(1, span // 2)
                continue
            if block is None or any(e["blockNumber"] == end and e["blockHash"] != block["hash"] for e in logs):
                log.info("node does not hold block %d yet (lagging); the scan stops at block %d", end, start - 1)
                break
            found.extend(_request_event(entry) for entry in logs if not entry.get("removed"))
            start = end + 1
        return found, start - 1

    def batch(self, calls: list[tuple[str, list]]) -> list:
        """The results of several JSON-RPC calls sent in one batch (one HTTP request, so one node answers all)."""
        replies = self.w3.provider.make_batch_request(calls)  # type: ignore[arg-type]
        for (method, _params), reply in zip(calls, replies, strict=True):
            if "error" in reply:
                raise ValueError(f"{method}: {reply['error']}")
        return [reply.get("result") for reply in replies]

    def _logs_with_block(self, start: int, end: int) -> tuple[dict | None, list[dict] | None]:
        """One batch: block `end` (None if the node lacks it) and the request logs of [start, end] (None on error)."""
        query = {"address": self.contract.address, "fromBlock": hex(start), "toBlock": hex(end),
                 "topics": ["0x" + bytes(self._requested_topic).hex()]}  # fmt: skip
        block_reply, logs_reply = self.w3.provider.make_batch_request(
            [("eth_getBlockByNumber", [hex(end), False]), ("eth_getLogs", [query])]  # type: ignore[list-item]
        )
        if "error" in block_reply:
            raise ValueError(f"eth_getBlockByNumber({end}): {block_reply['error']}")
        if "error" in logs_reply:
            log.warning("get_logs %d-%d failed (%s)", start, end, logs_reply["error"])
            return None, None
        block = block_reply.get("result")
        return ({"hash": HexBytes(block["hash"])} if block else None), [_raw_log(e) for e in logs_reply["result"]]

    def _logs(
        self, topic: bytes, first: int, last: int, max_range: int, parse: Callable[[dict], T],
        topics: list[bytes] | None = None,
    ) -> list[T]:  # fmt: skip
        found: list[T] = []
        start, span = first, max_range
        while start <= last:
            end = min(last, start + span - 1)
            query = {"address": self.contract.address, "fromBlock": start, "toBlock": end, "topics": topics or [topic]}
            try:
                logs = self.w3.eth.get_logs(query)  # type: ignore[arg-type]
            except (Web3Exception, ValueError) as exc:
                if span == 1:
                    raise
                span = max(1, span // 2)
                log.warning("get_logs %d-%d failed (%s); retrying with ranges of %d blocks", start, end, exc, span)
                continue
            found.extend(parse(entry) for entry in logs if not entry.get("removed"))
            start = end + 1
        return found


def _raw_log(entry: dict) -> dict:
    """A log from a raw JSON-RPC answer, in the shape web3 formats it."""
    return {**entry, "topics": [HexBytes(t) for t in entry["topics"]], "data": HexBytes(entry["data"]),
            "blockNumber": int(entry["blockNumber"], 16), "blockHash": HexBytes(entry["blockHash"]),
            "transactionHash": HexBytes(entry["transactionHash"])}  # fmt: skip


def _topic_int(topic: bytes) -> int:
    return int.from_bytes(topic, "big")


def _topic_address(topic: bytes) -> str:
    return Web3.to_checksum_address(bytes(topic)[-20:])


def _request_event(entry: dict) -> RequestEvent:
    topics = entry["topics"]
    # `string` and `bytes` share one ABI encoding: decoding the prompt as bytes lets invalid UTF-8 (sent as
    # raw calldata) become U+FFFD instead of an exception.
    aspect, asset, escrow, deadline, prompt = decode(
        ["uint8", "uint8", "uint256", "uint40", "bytes"], bytes(entry["data"])
    )
    return RequestEvent(
        token_id=_topic_int(topics[1]),
        tier=_topic_int(topics[3]),
        aspect=aspect,
        prompt=decode_prompt(prompt),
        requester=_topic_address(topics[2]),
        escrow=escrow,
        deadline=deadline,
        block_number=entry["blockNumber"],
        block_hash=entry["blockHash"].hex(),
        mint_tx=entry["transactionHash"].hex(),
        asset=Asset(asset),
    )


def _image_set_event(entry: dict) -> ImageSetEvent:
    topics = entry["topics"]
    digest, asset, payment, fee = decode(["bytes32", "uint8", "uint256", "uint256"], bytes(entry["data"]))
    return ImageSetEvent(
        token_id=_topic_int(topics[1]),
        oracle=_topic_address(topics[2]),
        metadata_digest=bytes(digest),
        payment=payment,
        fee=fee,
        block_number=entry["blockNumber"],
        block_hash=entry["blockHash"].hex(),
        tx_hash=entry["transactionHash"].hex(),
        asset=Asset(asset),
    )
