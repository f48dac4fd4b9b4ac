"""The transactions a buyer sends, byte for byte, and the tag that ties a mint to one payment.

A payment's id (16 random bytes) is appended to the `mint` calldata: the ABI decoder ignores trailing bytes, so
the contract sees an ordinary mint, and the follower reads the id back from the transaction's input. Phone
wallets paying through the EIP-681 URI cannot append it; their mint is matched by its exact terms instead.
"""

from __future__ import annotations

from urllib.parse import quote

from eth_abi import encode
from eth_utils import keccak

from genim_mcp.terms import ImageTerms

TAG_BYTES = 16
MINT_SELECTOR = keccak(text="mint(string,uint8,uint8)")[:4]
REFUND_SELECTOR = keccak(text="refund(uint256)")[:4]


def mint_calldata(terms: ImageTerms, tag: bytes | None = None) -> bytes:
    data = MINT_SELECTOR + encode(["string", "uint8", "uint8"], [terms.prompt, terms.tier, int(terms.aspect)])
    if tag is not None:
        assert len(tag) == TAG_BYTES
        data += tag
    return data


def tag_of(calldata: bytes) -> bytes | None:
    """The payment tag a mint carries, if its input is exactly one ABI-encoded mint plus 16 bytes."""
    if calldata[:4] != MINT_SELECTOR or len(calldata) < 4 + 32 * 4 + TAG_BYTES:
        return None
    prompt_length = int.from_bytes(calldata[4 + 32 * 3 : 4 + 32 * 4], "big")
    encoded = 4 + 32 * 4 + -(-prompt_length // 32) * 32
    return calldata[encoded:] if len(calldata) == encoded + TAG_BYTES else None


def refund_calldata(token_id: int) -> bytes:
    return REFUND_SELECTOR + encode(["uint256"], [token_id])


def eip681_mint_uri(contract: str, chain_id: int, terms: ImageTerms, value_wei: int) -> str:
    """`ethereum:<contract>@<chain>/mint?string=..&uint8=<tier>&uint8=<aspect>&value=<wei>` for phone wallets."""
    prompt = quote(terms.prompt, safe="")
    return (
        f"ethereum:{contract}@{chain_id}/mint?string={prompt}&uint8={terms.tier}&uint8={int(terms.aspect)}"
        f"&value={value_wei}"
    )
