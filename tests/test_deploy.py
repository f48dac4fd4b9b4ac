"""scripts/deploy.py's choices before it deploys: dollar prices to the contract's units, the payment addresses
per network (OP Mainnet's defaults, explicit ones elsewhere), and --publish refused where it cannot run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from types import SimpleNamespace

import click
import pytest

from genim_devnet.localnet import ROOT, anvil

spec = importlib.util.spec_from_file_location("deploy_script", ROOT / "scripts/deploy.py")
deploy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(deploy)

FEED = "0x" + "ab" * 20


def network(chain_id: int, is_local: bool = False) -> SimpleNamespace:
    return SimpleNamespace(chain_id=chain_id, is_local=is_local)


@pytest.mark.parametrize(("text", "units"), [("0.10", 100_000), ("$0.3", 300_000), ("4294.967295", 2**32 - 1),
                                              ("0", 0), ("0.000001", 1)])  # fmt: skip
def test_dollar_prices_in_usdc_units(text, units):
    assert deploy.usd_units(text) == units
    assert deploy.usd_units(deploy.usd_text(units)) == units


@pytest.mark.parametrize("text", ["0.0000001", "-1", "4294.967296", "ten cents", "NaN"])
def test_prices_the_contract_cannot_hold_are_refused(text):
    with pytest.raises(click.BadParameter):
        deploy.usd_units(text)


def test_op_mainnet_defaults_and_overrides():
    assert deploy.payment_addresses(network(10), None, None, None, None) == deploy.OP_MAINNET
    overridden = deploy.payment_addresses(network(10), None, None, FEED, None)
    assert overridden == deploy.OP_MAINNET._replace(eth_usd_feed=FEED)


def test_other_live_networks_need_every_address():
    with pytest.raises(click.UsageError, match="--usdc, --sequencer-feed"):
        deploy.payment_addresses(network(11155420), None, None, FEED, None)
    given = deploy.payment_addresses(network(11155420), None, deploy.ZERO_ADDRESS, FEED, deploy.ZERO_ADDRESS)
    assert given == (deploy.ZERO_ADDRESS, FEED, deploy.ZERO_ADDRESS)


def test_publish_refused_on_a_local_network_before_deploying(tmp_path):
    record = tmp_path / "deployment.json"
    cmd = ["ape", "run", "deploy", "--network", "optimism:local:foundry", "--account", "TEST::0", "--publish",
           "--deployment-file", str(record)]  # fmt: skip
    with anvil() as node:
        run = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "APE_FOUNDRY_HOST": node.url, "ETHERSCAN_API_KEY": "x"},
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert run.returncode != 0 and "has no explorer" in run.stdout + run.stderr
        assert not record.exists()
        assert node.rpc("eth_getTransactionCount", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest") == "0x0"
