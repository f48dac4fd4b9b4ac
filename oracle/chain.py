"""Reading the contract: request events in bounded ranges, and each token's request as it is now."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from eth_abi import decode
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, Web3Exception

from oracle.journal import NewJob
from oracle.metadata import decode_prompt

ABI = json.loads((Path(__file__).parent / "GenImNFT.abi.json").read_text())
log = logging.getLogger("genim.chain")


class Status(IntEnum):
    NONE = 0
    PENDING = 1
    FULFILLED = 2
    REFUNDED = 3


@dataclass(frozen=True)
class OnChainRequest:
    status: Status
    tier: int
    deadline: int
    escrow: int
    metadata_digest: bytes


class Chain:
    """One contract on one RPC endpoint. Every call has the provider's timeout."""

    def __init__(self, rpc_uri: str, address: str, timeout: float = 15.0) -> None:
        # No retries inside web3: the daemon's loop retries every stage, and a call must not outlast a SIGTERM.
        provider = Web3.HTTPProvider(rpc_uri, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self.w3 = Web3(provider)
        self.contract: Contract = self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=ABI)
        self._request_topic = self.w3.keccak(text="ImageRequested(uint256,address,uint8,uint256,uint40,string)")

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

    def has_code(self) -> bool:
        return len(self.w3.eth.get_code(self.contract.address)) > 0

    def is_oracle(self, account: str) -> bool:
        return self.contract.functions.isOracle(account).call()

    def credit(self, account: str) -> int:
        return self.contract.functions.credit(account).call()

    def request(self, token_id: int) -> OnChainRequest:
        status, tier, deadline, escrow, digest = self.contract.functions.request(token_id).call()
        return OnChainRequest(Status(status), tier, deadline, escrow, bytes(digest))

    def requests_between(self, first: int, last: int, max_range: int) -> list[NewJob]:
        """ImageRequested logs in [first, last], in ranges of at most `max_range` blocks that halve on error."""
        jobs: list[NewJob] = []
        start, span = first, max_range
        while start <= last:
            end = min(last, start + span - 1)
            try:
                logs = self.w3.eth.get_logs(
                    {
                        "address": self.contract.address,
                        "fromBlock": start,
                        "toBlock": end,
                        "topics": [self._request_topic],
                    }
                )
            except (Web3Exception, ValueError) as exc:
                if span == 1:
                    raise
                span = max(1, span // 2)
                log.warning("get_logs %d-%d failed (%s); retrying with ranges of %d blocks", start, end, exc, span)
                continue
            jobs.extend(self._job(entry) for entry in logs if not entry.get("removed"))
            start = end + 1
        return jobs

    @staticmethod
    def _job(entry: dict) -> NewJob:
        topics = entry["topics"]
        # `string` and `bytes` share one ABI encoding: decoding the prompt as bytes lets invalid UTF-8 (sent
        # as raw calldata) become U+FFFD instead of an exception.
        escrow, deadline, prompt = decode(["uint256", "uint40", "bytes"], bytes(entry["data"]))
        return NewJob(
            token_id=int.from_bytes(topics[1], "big"),
            tier=int.from_bytes(topics[3], "big"),
            prompt=decode_prompt(prompt),
            requester=Web3.to_checksum_address(bytes(topics[2])[-20:]),
            escrow=escrow,
            deadline=deadline,
            block_number=entry["blockNumber"],
            block_hash=entry["blockHash"].hex(),
        )
