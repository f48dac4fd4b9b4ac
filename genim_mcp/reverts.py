"""Why the contract refuses a mint, in words a buyer can act on.

GenImNFT reverts with custom errors (`OracleSetChanged(expected, current)`, `StalePrice(updatedAt, maxAge)`, ...).
They come back from `eth_call`/`eth_estimateGas` as revert data, and from a mined mint only by replaying it:
this module decodes that data against the contract's ABI and says what happened, whether paying again at fresh
terms can succeed (`renewable`), and whether the ETH rail itself is closed for now (`feed`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError

from genim_mcp.units import eth_text, utc_text
from genimnft.contract import ABI

# A mint that named an outdated oracle set or sent too little at a rate that moved: paying again works.
RENEWABLE = frozenset({"OracleSetChanged", "InsufficientPayment"})
# The contract cannot price ETH now (Chainlink's checks): ETH mints revert until the feed recovers.
FEED = frozenset({"StalePrice", "SequencerDown", "SequencerGracePeriod", "InvalidPrice", "PriceOutOfRange"})


@dataclass(frozen=True)
class Revert:
    name: str
    args: dict[str, object]

    @property
    def renewable(self) -> bool:
        return self.name in RENEWABLE

    @property
    def feed(self) -> bool:
        return self.name in FEED

    def signature(self) -> str:
        return f"{self.name}({', '.join(f'{key}={value}' for key, value in self.args.items())})"

    def explain(self) -> str:
        """One clause: what the contract refused and why, ending with the error itself."""
        a = self.args
        words = {
            "OracleSetChanged": lambda: (
                f"the owner authorised another oracle after this payment was prepared (oracle epoch {a['expected']} "
                f"became {a['current']}), so the contract refuses this mint, which names the oracle set you were shown"
            ),
            "InsufficientPayment": lambda: (
                f"the ETH/USD rate moved past the margin: the contract charges {_eth(a['price'])} ETH now and the "
                f"mint sent at most {_eth(a['paid'])} ETH"
            ),
            "StalePrice": lambda: (
                f"ETH payments are paused: Chainlink's ETH/USD answer is from {_utc(a['updatedAt'])}, older than the "
                f"{a['maxAge']} s the contract accepts"
            ),
            "SequencerDown": lambda: "ETH payments are paused: the L2 sequencer is down (Chainlink's uptime feed)",
            "SequencerGracePeriod": lambda: (
                f"ETH payments are paused: the L2 sequencer came back recently; they resume at {_utc(a['resumesAt'])}"
            ),
            "InvalidPrice": lambda: (
                f"ETH payments are paused: Chainlink's ETH/USD answer ({a['answer']}) is not positive"
            ),
            "PriceOutOfRange": lambda: "ETH payments are paused: at the current ETH/USD rate the price is out of range",
            "MintingIsPaused": lambda: "minting is paused by the contract's owner",
            "TierDisabled": lambda: f"tier {a['tier']} is not on sale",
        }.get(self.name)
        return f"{words()} [{self.signature()}]" if words else f"the contract reverted with {self.signature()}"


def _errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table = {}
    for entry in ABI:
        if entry["type"] == "error":
            types = [item["type"] for item in entry["inputs"]]
            selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
            table[selector] = (entry["name"], types, [item["name"] for item in entry["inputs"]])
    return table


ERRORS = _errors()


def decode_revert(data: bytes) -> Revert | None:
    """The contract's custom error in `data` (selector + ABI-encoded arguments), or None if it is not one."""
    known = ERRORS.get(bytes(data[:4]))
    if known is None:
        return None
    name, types, names = known
    try:
        values = decode(types, bytes(data[4:]))
    except DecodingError:  # malformed: not one of ours
        return None
    return Revert(name, {key: _plain(value) for key, value in zip(names, values, strict=True)})


def revert_of(exc: ContractLogicError) -> Revert | None:
    """The custom error that web3 raised `exc` for (its revert data), if it is one of the contract's."""
    data = exc.data if isinstance(exc.data, str) else None
    if data is None and isinstance(exc.message, str) and exc.message.startswith("0x"):
        data = exc.message
    if not data:
        return None
    try:
        return decode_revert(bytes.fromhex(data.removeprefix("0x")))
    except ValueError:
        return None


def replay(w3: Web3, tx: dict, block: int) -> Revert | None:
    """Why a mined transaction reverted: it is called again on the state at the end of its block."""
    call = {"from": tx["from"], "to": tx["to"], "value": tx["value"], "data": tx["input"], "gas": tx["gas"]}
    try:
        w3.eth.call(call, block)  # type: ignore[arg-type]
    except ContractLogicError as exc:
        return revert_of(exc)
    return None


def _plain(value: object) -> object:
    return "0x" + value.hex() if isinstance(value, bytes) else value


def _eth(wei: object) -> str:
    return eth_text(int(wei))  # type: ignore[call-overload]


def _utc(timestamp: object) -> str:
    return utc_text(int(timestamp))  # type: ignore[call-overload]
