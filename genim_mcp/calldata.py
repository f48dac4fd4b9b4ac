"""The transactions a buyer sends, byte for byte, and the tag that ties a mint to one payment.

Every mint names the oracle epoch the front read (`mint(prompt, tier, aspect, oracleEpoch)`): the contract
reverts with OracleSetChanged when the owner authorised another oracle since, so a buyer never binds an oracle
set they were not shown. A payment's id (16 random bytes) is appended after the ABI-encoded arguments: the ABI
decoder ignores trailing bytes, so the contract sees an ordinary mint, and the follower reads the id back from
the transaction's input. Phone wallets paying through the EIP-681 URI cannot append it: that link's value carries
the id instead, a per-payment offset below one gwei in place of the margin's last gwei (prices are whole gwei, so
the contract returns the offset with the excess, and `msg.value - escrow` modulo one gwei names the payment).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from eth_abi import encode
from eth_utils import keccak

from genim_mcp.terms import ImageTerms

TAG_BYTES = 16
MINT_TYPES = ["string", "uint8", "uint8", "uint256"]
MINT_SELECTOR = keccak(text=f"mint({','.join(MINT_TYPES)})")[:4]
REFUND_SELECTOR = keccak(text="refund(uint256)")[:4]
_HEAD = 4 + 32 * len(MINT_TYPES)  # selector and the four argument heads; the prompt's length word follows


@dataclass(frozen=True)
class MintQuote:
    """One ETH mint as a wallet sends it: the call's terms, the oracle epoch read for it, and the most it sends
    (the contract charges the tier's dollar price at the rate of the mint's block and returns the rest)."""

    terms: ImageTerms
    oracle_epoch: int
    value_wei: int
    link_value_wei: int | None = None  # what the EIP-681 link (no calldata tag) sends: value with the payment's offset

    def calldata(self, tag: bytes | None = None) -> bytes:
        return mint_calldata(self.terms, self.oracle_epoch, tag)

    def eip681(self, contract: str, chain_id: int) -> str:
        """`ethereum:<contract>@<chain>/mint?string=..&uint8=<tier>&uint8=<aspect>&uint256=<epoch>&value=<wei>`, the
        value carrying the payment's offset when it has one."""
        prompt = quote(self.terms.prompt, safe="")
        return (
            f"ethereum:{contract}@{chain_id}/mint?string={prompt}&uint8={self.terms.tier}"
            f"&uint8={int(self.terms.aspect)}&uint256={self.oracle_epoch}&value={self.link_value_wei or self.value_wei}"
        )


def mint_calldata(terms: ImageTerms, oracle_epoch: int, tag: bytes | None = None) -> bytes:
    args = [terms.prompt, terms.tier, int(terms.aspect), oracle_epoch]
    data = MINT_SELECTOR + encode(MINT_TYPES, args)
    if tag is not None:
        assert len(tag) == TAG_BYTES
        data += tag
    return data


def tag_of(calldata: bytes) -> bytes | None:
    """The payment tag a mint carries, if its input is exactly one ABI-encoded mint plus 16 bytes."""
    if calldata[:4] != MINT_SELECTOR or len(calldata) < _HEAD + 32 + TAG_BYTES:
        return None
    prompt_length = int.from_bytes(calldata[_HEAD : _HEAD + 32], "big")
    encoded = _HEAD + 32 + -(-prompt_length // 32) * 32
    return calldata[encoded:] if len(calldata) == encoded + TAG_BYTES else None


def refund_calldata(token_id: int) -> bytes:
    return REFUND_SELECTOR + encode(["uint256"], [token_id])
