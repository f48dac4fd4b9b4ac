"""Cost per image on OP mainnet on each payment rail: L2 execution, L1 data fee and GPU time, per tier, next to
the $0.10 original.

Run with `python bench/cost.py` (every input is an option; `--help` lists them with their defaults). It reads
the gas of each call from bench/results/gas.json (`make bench-gas`), builds the real signed EIP-1559
transactions the buyer, the relayer and the oracle send (ABI from genimnft/GenImNFT.abi.json), compresses each
with FastLZ to price its L1 data exactly as an OP-stack node does after Fjord, adds GPU seconds per image at an
hourly price, prints one table per tier and writes bench/results/cost.json.

Two rails, one image: the ETH rail is the buyer's `mint` paying the tier's dollar price in wei at the ETH/USD
rate; the USDC rail is `mintWithAuthorization` (the `v, r, s` form) sent by a relayer with the buyer's EIP-3009
authorization, a longer transaction that also runs USDC's transferWithAuthorization. Chain fee per image on a
rail = its mint (L2 gas x (base + priority fee) + L1 data fee) + 1/16 of a 16-token setImages (same two parts).
The operator fee (Isthmus) is 0 on OP mainnet and left out. Compute per image = GPU seconds per image x hourly
price / 3600, i.e. a GPU kept busy; idle time is not counted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import eth_abi
from eth_account import Account
from eth_utils import function_abi_to_4byte_selector, to_checksum_address

from oracle.config import TierSettings, default_tiers

ROOT = Path(__file__).resolve().parent.parent
GAS_FILE = ROOT / "bench" / "results" / "gas.json"
GENERATE_FILE = ROOT / "bench" / "results" / "generate.json"
RESULTS = ROOT / "bench" / "results" / "cost.json"
ABI_FILE = ROOT / "genimnft" / "GenImNFT.abi.json"

TIER_NAMES = ("basic", "premium", "ultra")
# Estimated H100 seconds per image of each default tier (README, "Tiers"), until bench/generate.py measures
# them: basic sd-turbo 512² 1 step, premium SDXL-Lightning 1024² 4 steps, ultra the same plus the x2 upscaler.
DEFAULT_GPU_SECONDS = {"basic": 0.03, "premium": 0.35, "ultra": 5.0}
ORIGINAL_PRICE_USD = 0.10
BASIC_GOAL_USD = 0.001
BATCH = 16  # tokens per setImages, as in bench/gas.py
OP_MAINNET_CHAIN_ID = 10
GWEI = 10**9
WEI_PER_ETH = 10**18

# A 200-byte prompt without repeats (bench/gas.py's repeats a phrase, which FastLZ would flatter).
PROMPT_200 = (
    "A lighthouse on a basalt cliff at dawn, oil painting, warm light over cold surf, gulls circling, "
    "a red fishing boat below, thick impasto brushwork, dramatic clouds, muted teal and amber palette, misty"
)
# Fixed placeholder key and contract address: the signature and address bytes are as incompressible as real ones.
SIGNER_KEY = hashlib.sha256(b"genimnft bench/cost.py placeholder key").digest()
CONTRACT = to_checksum_address(hashlib.sha256(b"genimnft bench/cost.py contract").digest()[:20])
NONCE = 1234
ORACLE_EPOCH = 1  # the epoch a mint names: one small integer, like a live deployment's
# The USDC rail's authorization: a buyer, a validity end and a 32-byte nonce, and a signature (r, s random-looking).
USDC_BUYER = to_checksum_address(hashlib.sha256(b"genimnft bench/cost.py usdc buyer").digest()[:20])
VALID_BEFORE = 1_900_000_000
AUTH_NONCE = hashlib.sha256(b"genimnft bench/cost.py nonce").digest()
SIG_R, SIG_S = (hashlib.sha256(b"genimnft bench/cost.py signature " + part).digest() for part in (b"r", b"s"))
RAILS = {"eth": ("mint_first", "mint_repeat"), "usdc": ("mint_usdc_first", "mint_usdc")}  # (first-time, repeat)

# Fjord L1 data fee, as GasPriceOracle._fjordL1Cost / _fjordLinearRegression compute it
# (ethereum-optimism/optimism packages/contracts-bedrock/src/L2/GasPriceOracle.sol) and op-geth charges it
# (core/types/rollup_cost.go, NewL1CostFuncFjord, on FlzCompressLen of the signed transaction):
#   estimatedSize = max(MIN_TRANSACTION_SIZE * 1e6, COST_INTERCEPT + COST_FASTLZ_COEF * fastlzSize)
#   l1FeeScaled   = baseFeeScalar * l1BaseFee * 16 + blobBaseFeeScalar * blobBaseFee
#   l1Fee         = estimatedSize * l1FeeScaled / 1e12
COST_INTERCEPT = -42_585_600
COST_FASTLZ_COEF = 836_500
MIN_TRANSACTION_SIZE = 100


# FastLZ level 1 exactly as Solady's LibZip.flzCompress (which GasPriceOracle uses) and op-geth's FlzCompressLen
# run it, including their match-length count (it includes the first differing byte) and 8192-entry hash table.
def _u24(data: bytes, i: int) -> int:
    return data[i] | data[i + 1] << 8 | data[i + 2] << 16


def _hash(value: int) -> int:
    return ((2654435769 * value) >> 19) & 0x1FFF


def _literals(out: bytearray, run: bytes) -> None:
    for start in range(0, len(run), 32):
        chunk = run[start : start + 32]
        out.append(len(chunk) - 1)
        out += chunk


def _match(out: bytearray, length: int, distance: int) -> None:
    d = distance - 1
    while length > 262:
        out += bytes((224 + (d >> 8), 253, d & 0xFF))
        length -= 262
    if length < 7:
        out += bytes(((length << 5) + (d >> 8), d & 0xFF))
    else:
        out += bytes((224 + (d >> 8), length - 7, d & 0xFF))


def _match_length(data: bytes, ref: int, ip: int, end: int) -> int:
    length = 0
    while ip + length < end:
        length += 1
        if data[ref + length - 1] != data[ip + length - 1]:
            break
    return length


def flz_compress(data: bytes) -> bytes:
    out = bytearray()
    table = [0] * 8192
    limit = len(data) - 13
    anchor, ip = 0, 2
    while ip < limit:
        while True:  # find the next 3-byte sequence seen within 8191 bytes
            seq = _u24(data, ip)
            slot = _hash(seq)
            ref, table[slot] = table[slot], ip
            distance = ip - ref
            if ip >= limit:
                break
            ip += 1
            if distance <= 0x1FFF and seq == _u24(data, ref):
                break
        if ip >= limit:
            break
        ip -= 1
        if ip > anchor:
            _literals(out, data[anchor:ip])
        length = _match_length(data, ref + 3, ip + 3, limit + 9)
        _match(out, length, distance)
        ip += length
        for _ in range(2):
            table[_hash(_u24(data, ip))] = ip
            ip += 1
        anchor = ip
    _literals(out, data[anchor:])
    return bytes(out)


# op-geth core/types/rollup_cost_test.go TestFlzCompressLen; the last is OP mainnet transaction
# 0x8eb9dd4eb6d33f4dc25fb015919e4b1e9f7542f9b0322bf6622e268cd116b594.
FLZ_VECTORS = (
    (b"", 0),
    (bytes([1]) * 1000, 21),
    (bytes(1000), 21),
    (
        bytes.fromhex(
            "02f901550a758302df1483be21b88304743f94f80e51afb613d764fa61751affd3313c190a86bb870151bd62fd12adb8e41e"
            "f24f3f000000000000000000000000000000000000000000000000000000000000006e000000000000000000000000af88d0"
            "65e77c8cc2239327c5edb3a432268e5831000000000000000000000000000000000000000000000000000000000003c1e500"
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000a000000000000000000000000000000000000000000000000000000000000000148c89ed219d"
            "02f1a5be012c689b4f5b731827bebe000000000000000000000000c001a033fd89cb37c31b2cba46b6466e040c61fc9b2a36"
            "75a7f5f493ebd5ad77c497f8a07cdf65680e238392693019b4092f610222e71b7cec06449cb922b93b6a12744e"
        ),
        202,
    ),
)


def check_fastlz() -> None:
    for data, expected in FLZ_VECTORS:
        got = len(flz_compress(data))
        if got != expected:
            raise AssertionError(f"FastLZ length {got} != {expected} for a {len(data)}-byte op-geth test vector")


@dataclass(frozen=True)
class L1Params:
    base_fee_wei: int
    blob_base_fee_wei: int
    base_fee_scalar: int
    blob_fee_scalar: int


def estimated_size(fastlz_size: int) -> int:
    """Fjord's estimate of the transaction's size in the batch (bytes, scaled by 1e6)."""
    return max(MIN_TRANSACTION_SIZE * 10**6, COST_INTERCEPT + COST_FASTLZ_COEF * fastlz_size)


def l1_fee_scaled(params: L1Params) -> int:
    return params.base_fee_scalar * params.base_fee_wei * 16 + params.blob_fee_scalar * params.blob_base_fee_wei


def l1_fee_wei(fastlz_size: int, params: L1Params) -> int:
    return estimated_size(fastlz_size) * l1_fee_scaled(params) // 10**12


def _calldata(abi: list[dict[str, Any]], name: str, args: list[Any]) -> bytes:
    """ABI-encoded call of `name` (the overload that takes len(args) arguments)."""
    entry = next(e for e in abi if e.get("type") == "function" and e["name"] == name and len(e["inputs"]) == len(args))
    types = [i["type"] for i in entry["inputs"]]
    return function_abi_to_4byte_selector(entry) + eth_abi.encode(types, args)


@dataclass(frozen=True)
class Fees:
    base_wei: int
    priority_wei: int


def signed_tx(data: bytes, gas: int, value: int, fees: Fees) -> bytes:
    """The serialized signed EIP-1559 transaction (0x02 || rlp) that op-geth compresses; fees as the daemon sets."""
    tx = {
        "type": 2,
        "chainId": OP_MAINNET_CHAIN_ID,
        "nonce": NONCE,
        "maxPriorityFeePerGas": fees.priority_wei,
        "maxFeePerGas": 2 * fees.base_wei + fees.priority_wei,
        "gas": gas * 5 // 4,  # limit: 25% over the gas used
        "to": CONTRACT,
        "value": value,
        "data": data,
    }
    return bytes(Account.from_key(SIGNER_KEY).sign_transaction(tx).raw_transaction)


@dataclass(frozen=True)
class TxCost:
    name: str
    gas: int
    size: int
    fastlz_size: int
    l2_fee_wei: int
    l1_fee_wei: int
    tokens: int  # images the transaction serves: its fees per image are divided by this

    @property
    def per_image_wei(self) -> int:
        return (self.l2_fee_wei + self.l1_fee_wei) // self.tokens


def price_tx(name: str, data: bytes, gas: int, value: int, tokens: int, fees: Fees, l1: L1Params) -> TxCost:
    raw = signed_tx(data, gas, value, fees)
    fastlz = len(flz_compress(raw))
    l2_fee = gas * (fees.base_wei + fees.priority_wei)
    return TxCost(name, gas, len(raw), fastlz, l2_fee, l1_fee_wei(fastlz, l1), tokens)


def tier_transactions(
    abi: list[dict[str, Any]], gas: dict[str, int], tier: int, price_wei: int, fees: Fees, l1: L1Params
) -> dict[str, TxCost]:
    mint = _calldata(abi, "mint", [PROMPT_200, tier, 0, ORACLE_EPOCH])
    authorization = [USDC_BUYER, 0, VALID_BEFORE, AUTH_NONCE, 28, SIG_R, SIG_S]
    mint_usdc = _calldata(abi, "mintWithAuthorization", [PROMPT_200, tier, 0, ORACLE_EPOCH, *authorization])
    first = 1_000_000 + 1000 * tier  # token ids of a contract some time in production
    digests = [hashlib.sha256(f"metadata {first + i}".encode()).digest() for i in range(BATCH)]
    single = _calldata(abi, "setImage", [first, digests[0]])
    batch = _calldata(abi, "setImages", [[first + i for i in range(BATCH)], digests])
    batch_gas = gas["set_images16_per_token"] * BATCH
    specs = {  # key: (label, calldata, gas used, value, images served)
        "mint_first": ("mint (first-time holder)", mint, gas["mint_first"], price_wei, 1),
        "mint_repeat": ("mint (repeat holder)", mint, gas["mint_repeat"], price_wei, 1),
        "mint_usdc_first": ("USDC mint (first-time)", mint_usdc, gas["mint_usdc_first"], 0, 1),
        "mint_usdc": ("USDC mint (repeat holder)", mint_usdc, gas["mint_usdc"], 0, 1),
        "set_image": ("setImage (alone)", single, gas["set_image"], 0, 1),
        "set_images16": (f"setImages x{BATCH} (per token)", batch, batch_gas, 0, BATCH),
    }
    return {key: price_tx(*spec, fees, l1) for key, spec in specs.items()}


def measured_gpu_seconds(path: Path, tier: int, settings: TierSettings) -> tuple[float, str] | None:
    """1 / best images/s of bench/generate.py's `tierN` entry (the tier's pipeline as configured, base and
    upscale), if it was measured with this tier's steps."""
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get(f"tier{tier}")
    if not entry or entry["settings"].get("steps") != settings.steps:
        return None
    best = entry["best"]
    model = Path(entry["settings"]["model"]).name
    return best["seconds_per_image"], f"measured: {model} ({entry['size']}), batch {best['batch_size']}"


def gpu_seconds(args: argparse.Namespace, name: str, settings: TierSettings) -> tuple[float, str]:
    if name in args.gpu_seconds:
        return args.gpu_seconds[name], "--gpu-seconds-per-image"
    return measured_gpu_seconds(args.generate_file, TIER_NAMES.index(name), settings) or (
        DEFAULT_GPU_SECONDS[name],
        "estimated (H100), not measured",
    )


def _usd(wei: int, eth_usd: Decimal) -> float:
    return float(Decimal(wei) / WEI_PER_ETH * eth_usd)


def breakdown(paid: list[TxCost], l1: L1Params, eth_usd: Decimal) -> dict[str, float]:
    """Chain fee per image split into L2 execution and the L1 data fee's base-fee and blob-fee terms."""
    size = sum(Decimal(estimated_size(tx.fastlz_size)) / tx.tokens for tx in paid)
    terms = {
        "l2_execution": sum(Decimal(tx.l2_fee_wei) / tx.tokens for tx in paid),
        "l1_data_base_fee": size * l1.base_fee_scalar * l1.base_fee_wei * 16 / 10**12,
        "l1_data_blob_fee": size * l1.blob_fee_scalar * l1.blob_base_fee_wei / 10**12,
    }
    return {name: float(wei / WEI_PER_ETH * eth_usd) for name, wei in terms.items()}


def rail_report(txs: dict[str, TxCost], mint_key: str, compute_usd: float, l1: L1Params, eth_usd: Decimal) -> dict:
    """One rail's cost per image: its mint plus 1/BATCH of setImages, and the GPU time."""
    paid = [txs[mint_key], txs["set_images16"]]
    chain_wei = sum(tx.per_image_wei for tx in paid)
    chain_usd = _usd(chain_wei, eth_usd)
    total = chain_usd + compute_usd
    return {
        "mint": mint_key,
        "chain_fee_wei": chain_wei,
        "chain_fee_usd": chain_usd,
        "breakdown_usd": breakdown(paid, l1, eth_usd) | {"compute": compute_usd},
        "total_usd": total,
        "times_cheaper_than_original": ORIGINAL_PRICE_USD / total,
    }


def tier_report(
    args: argparse.Namespace, name: str, settings: TierSettings, txs: dict[str, TxCost], l1: L1Params
) -> dict[str, Any]:
    eth_usd = Decimal(str(args.eth_usd))
    seconds, source = gpu_seconds(args, name, settings)
    compute_usd = seconds * args.gpu_hourly_usd / 3600
    which = 0 if args.mint == "first-time" else 1
    return {
        "size": f"{settings.width * settings.scale}x{settings.height * settings.scale}",
        "steps": settings.steps,
        "transactions": {
            key: asdict(tx) | {"l2_fee_usd": _usd(tx.l2_fee_wei, eth_usd), "l1_fee_usd": _usd(tx.l1_fee_wei, eth_usd)}
            for key, tx in txs.items()
        },
        "rails": {rail: rail_report(txs, mints[which], compute_usd, l1, eth_usd) for rail, mints in RAILS.items()},
        "gpu_seconds_per_image": seconds,
        "gpu_seconds_source": source,
        "compute_usd": compute_usd,
        "original_price_usd": ORIGINAL_PRICE_USD,
    }


ROW = "  {:<28}{:>9}{:>9}{:>8}{:>12}{:>12}{:>13}"


def print_tier(name: str, report: dict[str, Any], mint: str) -> None:
    print(f"\n{name} {report['size']}, {report['steps']} step(s); gas and fees per image, sizes per transaction")
    print(ROW.format("transaction", "L2 gas", "tx bytes", "fastlz", "L2 fee $", "L1 fee $", "per image $"))
    for tx in report["transactions"].values():
        n = tx["tokens"]
        l2, l1 = tx["l2_fee_usd"] / n, tx["l1_fee_usd"] / n
        print(
            ROW.format(
                tx["name"],
                f"{tx['gas'] // n:,}",
                tx["size"],
                tx["fastlz_size"],
                f"{l2:.6f}",
                f"{l1:.6f}",
                f"{l2 + l1:.6f}",
            )
        )
    print(
        f"  compute per image     ${report['compute_usd']:.6f}  "
        f"({report['gpu_seconds_per_image']:.4f} GPU s, {report['gpu_seconds_source']})"
    )
    for rail, figures in report["rails"].items():
        print(
            f"  {rail.upper():<4} rail: chain ${figures['chain_fee_usd']:.6f} (mint by a {mint} holder + 1/{BATCH} of "
            f"setImages), total ${figures['total_usd']:.6f} per image, "
            f"{figures['times_cheaper_than_original']:.0f}x below the ${ORIGINAL_PRICE_USD:.2f} original"
        )
        parts = ", ".join(f"{part} ${usd:.6f}" for part, usd in figures["breakdown_usd"].items())
        print(f"             of which {parts}")


def _tier_seconds(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    if name not in TIER_NAMES or not seconds:
        raise argparse.ArgumentTypeError(f"expected TIER=SECONDS with TIER in {', '.join(TIER_NAMES)}, got {text!r}")
    return name, float(seconds)


def _prices(text: str) -> list[Decimal]:
    prices = [Decimal(p) for p in text.split(",")]
    if len(prices) != len(TIER_NAMES):
        raise argparse.ArgumentTypeError(f"expected {len(TIER_NAMES)} comma-separated prices, got {text!r}")
    return prices


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_Help)
    p.add_argument(
        "--gpu-seconds-per-image",
        dest="gpu_seconds_list",
        type=_tier_seconds,
        action="append",
        default=[],
        metavar="TIER=SECONDS",
        help="GPU seconds per image for a tier (repeatable). Without it: 1 / best tuned images/s from "
        f"{GENERATE_FILE.relative_to(ROOT)} for the tier's size and steps when that was measured, else the "
        f"estimates {' '.join(f'{k}={v}' for k, v in DEFAULT_GPU_SECONDS.items())} (H100, README Tiers), "
        "which are not measurements",
    )
    p.add_argument("--gpu-hourly-usd", type=float, default=2.50, help="price of one GPU hour")
    p.add_argument("--l2-base-fee-gwei", type=float, default=0.001, help="OP mainnet L2 base fee")
    p.add_argument(
        "--l2-priority-fee-gwei", type=float, default=0.001, help="L2 priority fee (the daemon's fallback tip)"
    )
    p.add_argument("--l1-base-fee-gwei", type=float, default=10.0, help="Ethereum L1 base fee")
    p.add_argument("--blob-base-fee-gwei", type=float, default=1.0, help="Ethereum L1 blob base fee")
    p.add_argument("--base-fee-scalar", type=int, default=5227, help="L1Block baseFeeScalar (OP mainnet)")
    p.add_argument("--blob-fee-scalar", type=int, default=1014213, help="L1Block blobBaseFeeScalar (OP mainnet)")
    p.add_argument("--eth-usd", type=float, default=3000.0, help="ETH price in USD")
    p.add_argument(
        "--tier-prices-usd",
        type=_prices,
        default="0.10,0.30,0.80",
        help="tier prices in US dollars (basic,premium,ultra), the deploy defaults; an ETH mint sends one at "
        "--eth-usd (only its bytes matter)",
    )
    p.add_argument(
        "--mint",
        choices=("first-time", "repeat"),
        default="first-time",
        help="price the mint of a first-time or repeat holder",
    )
    p.add_argument("--gas-file", type=Path, default=GAS_FILE, help="gas per call, from bench/gas.py")
    p.add_argument("--generate-file", type=Path, default=GENERATE_FILE, help="images/s, from bench/generate.py")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the figures are written")
    args = p.parse_args(argv)
    args.gpu_seconds = dict(args.gpu_seconds_list)
    return args


def price_in_wei(usd: Decimal, eth_usd: Decimal) -> int:
    """What an ETH mint is charged for `usd` at `eth_usd`, rounded up to a whole gwei as the contract does."""
    return int((usd * GWEI / eth_usd).to_integral_value(rounding=ROUND_CEILING)) * GWEI


def _gwei(value: float) -> int:
    return int(Decimal(str(value)) * GWEI)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_fastlz()
    gas = json.loads(args.gas_file.read_text())
    abi = json.loads(ABI_FILE.read_text())
    fees = Fees(_gwei(args.l2_base_fee_gwei), _gwei(args.l2_priority_fee_gwei))
    l1 = L1Params(
        _gwei(args.l1_base_fee_gwei), _gwei(args.blob_base_fee_gwei), args.base_fee_scalar, args.blob_fee_scalar
    )
    inputs = {k: v for k, v in vars(args).items() if k not in ("gpu_seconds_list", "gas_file", "generate_file", "out")}
    inputs["tier_prices_usd"] = [str(p) for p in args.tier_prices_usd]
    print(f"inputs: {json.dumps(inputs)}")
    tiers: dict[str, Any] = {}
    for index, settings in default_tiers().items():
        name = TIER_NAMES[index]
        price_wei = price_in_wei(args.tier_prices_usd[index], Decimal(str(args.eth_usd)))
        txs = tier_transactions(abi, gas, index, price_wei, fees, l1)
        tiers[name] = tier_report(args, name, settings, txs, l1)
        print_tier(name, tiers[name], args.mint)
    basic = {rail: figures["total_usd"] for rail, figures in tiers["basic"]["rails"].items()}
    for rail, total in basic.items():
        verdict = "meets" if total < BASIC_GOAL_USD else "misses"
        print(f"goal: basic < ${BASIC_GOAL_USD} on the {rail.upper()} rail: {verdict} it at ${total:.6f} per image")
    figures = {
        "inputs": inputs,
        "tiers": tiers,
        "basic_goal_usd": BASIC_GOAL_USD,
        "basic_meets_goal": {rail: total < BASIC_GOAL_USD for rail, total in basic.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
