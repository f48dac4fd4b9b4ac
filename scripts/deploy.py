"""Deploy GenImNFT: `ape run deploy --network optimism:sepolia:node --account deployer [options]`.

Prices are Ape amounts ("0.001 ether", "1000000 gwei"); the owner is the deploying account. The address,
chain id and deployment block go to deployments/<ecosystem>-<network>.json, where the oracle and the
admin script find them.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from ape import convert, project
from ape.cli import ConnectedProviderCommand, account_option

DEPLOYMENTS = Path(__file__).resolve().parent.parent / "deployments"


def deployment_path(ecosystem: str, network: str) -> Path:
    return DEPLOYMENTS / f"{ecosystem}-{network}.json"


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--basic-price", default="0.0001 ether", show_default=True, help="Tier 0 price (512x512).")
@click.option("--premium-price", default="0.0004 ether", show_default=True, help="Tier 1 price (1024x1024).")
@click.option("--ultra-price", default="0.0016 ether", show_default=True, help="Tier 2 price (2048x2048).")
@click.option("--oracle", "oracles", multiple=True, help="Oracle address to authorise; repeat for several.")
@click.option("--fee-bps", default=500, show_default=True, type=click.IntRange(0, 2000), help="Protocol fee.")
@click.option("--timeout", default=3600, show_default=True, type=click.IntRange(300, 30 * 86400), help="Seconds.")
@click.option("--placeholder-uri", default="", help="tokenURI while an image is pending.")
@click.option("--contract-uri", default="", help="ERC-7572 contract metadata URI.")
@click.option("--publish", is_flag=True, help="Verify the source on the explorer (needs an explorer plugin).")
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
    placeholder_uri,
    contract_uri,
    publish,
):
    prices = [convert(p, int) for p in (basic_price, premium_price, ultra_price)]
    nft = account.deploy(project.GenImNFT, account, prices, fee_bps, list(oracles), publish=publish)
    if timeout != 3600:
        nft.setTimeout(timeout, sender=account)
    if placeholder_uri:
        nft.setPlaceholderURI(placeholder_uri, sender=account)
    if contract_uri:
        nft.setContractURI(contract_uri, sender=account)
    receipt = nft.creation_metadata.receipt if nft.creation_metadata else None
    record = {
        "address": nft.address,
        "chain_id": network.chain_id,
        "block": receipt.block_number if receipt else 0,
        "owner": account.address,
        "oracles": list(oracles),
        "prices_wei": prices,
        "fee_bps": fee_bps,
        "timeout": timeout,
    }
    path = deployment_path(ecosystem.name, network.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    click.echo(f"GenImNFT deployed at {nft.address} (block {record['block']}); wrote {path}")
