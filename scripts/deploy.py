"""Deploy GenImNFT: `ape run deploy --network optimism:mainnet:node --account deployer [options]`.

Tier prices are US dollars ("0.10" is ten cents), stored with USDC's 6 decimals. On OP Mainnet (chain id 10)
the USDC rail, the ETH/USD feed and the L2 sequencer uptime feed default to native USDC and Chainlink's feeds
(README, "Deploying on Optimism", says where each address comes from); any other live network needs
--usdc, --eth-usd-feed and --sequencer-feed. A local network brings up Circle's real FiatTokenV2_2 and
Chainlink's MockV3Aggregator feeds first (genim_devnet) unless they are given.

The owner is the deploying account; `--safe` then starts the two-step handover to a Safe, which takes
ownership when it calls `acceptOwnership()` (the call is printed). `--publish` verifies the source on the
network's Etherscan explorer (ape-etherscan) and needs ETHERSCAN_API_KEY in the environment. Keys come only
from `ape accounts`. The deployment is written to deployments/<ecosystem>-<network>.json (or
--deployment-file), where the oracle, the MCP front and the demo find it.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option
from eth_utils import is_address, to_checksum_address

DEPLOYMENTS = Path(__file__).resolve().parent.parent / "deployments"
ZERO_ADDRESS = "0x" + "00" * 20
USD_DECIMALS = 6  # the contract's unit for prices: USDC's
MAX_PRICE = 2**32 - 1  # GenImNFT.MAX_PRICE: prices are stored in 32 bits
TIERS = ("basic", "premium", "ultra")
EXPLORER_KEY = "ETHERSCAN_API_KEY"  # ape-etherscan 0.8 reads this one key for every chain (Etherscan API v2)


class PaymentAddresses(NamedTuple):
    """What GenImNFT pays in and reads: the USDC of its USDC rail and Chainlink's feeds (sequencer: zero on a
    chain without one). A NamedTuple: `ape run` loads scripts outside sys.modules, where dataclasses fail."""

    usdc: str
    eth_usd_feed: str
    sequencer_uptime_feed: str


# OP Mainnet: Circle's "USDC Contract Addresses" page (native USDC, not the bridged USDC.e); Chainlink's
# "Price Feed Contract Addresses" page (ETH / USD, 8 decimals) and "L2 Sequencer Uptime Feeds" page.
OP_MAINNET = PaymentAddresses(
    usdc="0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85",
    eth_usd_feed="0x13e3Ee699D1909E989722E753853AE30b17e08c5",
    sequencer_uptime_feed="0x371EAD81c9102C9BF4874A9075FFFf170F2Ee389",
)
DEFAULTS_BY_CHAIN_ID = {10: OP_MAINNET}


def deployment_path(ecosystem: str, network: str) -> Path:
    return DEPLOYMENTS / f"{ecosystem}-{network}.json"


def usd_units(text: str) -> int:
    """A dollar price ("0.10", "$1.5") in the contract's 6-decimal units (100000); at most 6 decimals."""
    try:
        amount = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation as err:
        raise click.BadParameter(f"{text!r} is not a dollar amount such as 0.10") from err
    units = amount.scaleb(USD_DECIMALS)
    if not amount.is_finite() or amount < 0 or units != units.to_integral_value():
        raise click.BadParameter(f"{text!r}: a non-negative amount with at most {USD_DECIMALS} decimals")
    if units > MAX_PRICE:
        raise click.BadParameter(f"{text!r}: above the contract's MAX_PRICE of ${Decimal(MAX_PRICE).scaleb(-6)}")
    return int(units)


def usd_text(units: int) -> str:
    """100000 -> "0.10": the dollar amount with at least two decimals, as prices are written."""
    whole, fraction = f"{Decimal(units).scaleb(-USD_DECIMALS):.{USD_DECIMALS}f}".split(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _address(value: str | None, option: str, none_ok: bool = False) -> str | None:
    if value is None:
        return None
    if none_ok and value.lower() == "none":
        return ZERO_ADDRESS
    if not is_address(value):
        raise click.BadParameter(f"{value!r} is not an address", param_hint=option)
    return to_checksum_address(value)


def payment_addresses(network, account, usdc: str | None, eth_usd: str | None, sequencer: str | None):
    """The addresses given, else the chain's defaults, else (local networks only) a fresh devnet USDC and feeds."""
    given = {"--usdc": usdc, "--eth-usd-feed": eth_usd, "--sequencer-feed": sequencer}
    if all(v is not None for v in given.values()):
        return PaymentAddresses(usdc, eth_usd, sequencer)  # type: ignore[arg-type]
    if defaults := DEFAULTS_BY_CHAIN_ID.get(network.chain_id):
        return PaymentAddresses(
            usdc or defaults.usdc, eth_usd or defaults.eth_usd_feed, sequencer or defaults.sequencer_uptime_feed
        )
    if network.is_local and not any(v is not None for v in given.values()):
        return devnet_payment_addresses(account)
    missing = ", ".join(name for name, value in given.items() if value is None)
    raise click.UsageError(f"chain id {network.chain_id} has no default addresses: give {missing}")


def devnet_payment_addresses(account) -> PaymentAddresses:
    """Circle's FiatTokenV2_2 behind its proxy and Chainlink's MockV3Aggregator feeds on a local chain; the
    deploying test account updates the feeds (genim_devnet.feeds), USDC's roles sit on the devnet's accounts."""
    from eth_account import Account

    from genim_devnet.feeds import deploy_feeds
    from genim_devnet.stack import USD_PER_ETH, USDC_ADMIN, USDC_OWNER, dev_account
    from genim_devnet.usdc import deploy_usdc

    key = getattr(account, "private_key", None)
    if key is None:
        raise click.UsageError(
            "a local deploy brings up the devnet USDC and feeds from a test account: --account TEST::0"
        )
    w3 = chain.provider.web3
    usdc = deploy_usdc(w3, dev_account(USDC_ADMIN), dev_account(USDC_OWNER))
    feeds = deploy_feeds(w3, Account.from_key(key), USD_PER_ETH)
    click.echo(
        f"devnet: USDC (FiatTokenV2_2 behind its proxy) at {usdc.address}; ETH/USD feed at "
        f"{feeds.eth_usd.address} (${USD_PER_ETH}); sequencer uptime feed at {feeds.sequencer.address}"
    )
    return PaymentAddresses(usdc.address, feeds.eth_usd.address, feeds.sequencer.address)


def check_publishable(network) -> None:
    """Fails before anything is deployed when verification could not run. A local network has no explorer (and
    asking Ape for one there makes ape-etherscan fetch its list of chains)."""
    if network.is_local or network.explorer is None:
        raise click.UsageError(f"--publish: {network.ecosystem.name}:{network.name} has no explorer to verify on")
    if not os.environ.get(EXPLORER_KEY):
        raise click.UsageError(f"--publish needs an Etherscan API key in ${EXPLORER_KEY}")


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--basic-price", default="0.10", show_default=True, help="Tier 0 price in US dollars.")
@click.option("--premium-price", default="0.30", show_default=True, help="Tier 1 price in US dollars.")
@click.option("--ultra-price", default="0.80", show_default=True, help="Tier 2 price in US dollars.")
@click.option("--oracle", "oracles", multiple=True, help="Oracle address to authorise; repeat for several.")
@click.option("--fee-bps", default=500, show_default=True, type=click.IntRange(0, 2000), help="Protocol fee.")
@click.option("--timeout", default=3600, show_default=True, type=click.IntRange(300, 30 * 86400), help="Seconds.")
@click.option(
    "--max-price-age",
    default=3600,
    show_default=True,
    type=click.IntRange(60, 86400),
    help="Oldest ETH/USD answer an ETH mint accepts, in seconds (the feed's heartbeat plus a margin).",
)
@click.option("--usdc", help="USDC of the USDC rail; 'none' for no USDC rail. Default on OP Mainnet: native USDC.")
@click.option("--eth-usd-feed", help="Chainlink ETH/USD feed. Default on OP Mainnet: Chainlink's.")
@click.option("--sequencer-feed", help="Chainlink L2 sequencer uptime feed; 'none' on a chain without one.")
@click.option("--placeholder-uri", default="", help="tokenURI while an image is pending.")
@click.option("--contract-uri", default="", help="ERC-7572 contract metadata URI.")
@click.option("--safe", help="Start the two-step ownership handover to this Safe (it must call acceptOwnership).")
@click.option("--publish", is_flag=True, help=f"Verify the source on the explorer (needs ${EXPLORER_KEY}).")
@click.option(
    "--deployment-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the deployment record. Default: deployments/<ecosystem>-<network>.json.",
)
def cli(
    ecosystem,
    network,
    account,
    basic_price,
    premium_price,
    ultra_price,
    oracles,
    fee_bps,
    timeout,
    max_price_age,
    usdc,
    eth_usd_feed,
    sequencer_feed,
    placeholder_uri,
    contract_uri,
    safe,
    publish,
    deployment_file,
):
    prices = [usd_units(p) for p in (basic_price, premium_price, ultra_price)]
    oracle_addresses = [_address(o, "--oracle") for o in oracles]
    safe_address = _address(safe, "--safe")
    if safe_address in (ZERO_ADDRESS, account.address):
        raise click.BadParameter("the Safe must be another account than the deployer", param_hint="--safe")
    if publish:
        check_publishable(network)
    paid = payment_addresses(
        network,
        account,
        _address(usdc, "--usdc", none_ok=True),
        _address(eth_usd_feed, "--eth-usd-feed"),
        _address(sequencer_feed, "--sequencer-feed", none_ok=True),
    )

    nft = account.deploy(
        project.GenImNFT,
        account,
        prices,
        fee_bps,
        oracle_addresses,
        paid.usdc,
        paid.eth_usd_feed,
        paid.sequencer_uptime_feed,
    )
    if timeout != nft.timeout():
        nft.setTimeout(timeout, sender=account)
    if max_price_age != nft.maxPriceAge():
        nft.setMaxPriceAge(max_price_age, sender=account)
    if placeholder_uri:
        nft.setPlaceholderURI(placeholder_uri, sender=account)
    if contract_uri:
        nft.setContractURI(contract_uri, sender=account)
    if safe_address:
        nft.transferOwnership(safe_address, sender=account)

    receipt = nft.creation_metadata.receipt if nft.creation_metadata else None
    record = {
        "address": nft.address,
        "chain_id": network.chain_id,
        "block": receipt.block_number if receipt else 0,
        "transaction": receipt.txn_hash if receipt else None,
        "owner": nft.owner(),
        "pending_owner": safe_address,
        "oracles": oracle_addresses,
        "oracle_epoch": nft.oracleEpoch(),
        "usd_prices": dict(zip(TIERS, (usd_text(p) for p in prices), strict=True)),
        "usd_price_units": prices,
        "fee_bps": fee_bps,
        "timeout": timeout,
        "max_price_age": max_price_age,
        **paid._asdict(),
    }
    path = deployment_file or deployment_path(ecosystem.name, network.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    click.echo(f"GenImNFT deployed at {nft.address} (block {record['block']}); wrote {path}")
    if safe_address:
        print_safe_handover(nft, safe_address)
    if publish:
        network.publish_contract(nft.address)  # raises if the explorer refuses it


def print_safe_handover(nft, safe: str) -> None:
    """The one transaction the Safe must execute; until then the deployer stays the owner."""
    data = nft.acceptOwnership.encode_input().hex()
    click.echo(
        f"Ownership handover started: {safe} is the pending owner; the deployer stays the owner until the Safe\n"
        f"executes this transaction (Safe{{Wallet}}: New transaction > Transaction Builder, or any Safe tool):\n"
        f"  to:    {nft.address}\n  value: 0\n  data:  0x{data.removeprefix('0x')}   (acceptOwnership())"
    )
