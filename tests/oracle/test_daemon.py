"""The daemon end to end on real parts: anvil, a js-ipfs node, the diffusers code path (tiny model)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genim_devnet.stack import FEE_BPS, USD_PRICES
from genimnft.contract import Asset
from genimnft.ipfs import IpfsClient
from oracle import observe
from oracle.generate import Generator, seed_for
from oracle.journal import AlreadyRunning, JobState, Journal
from tests.services import (
    account_key,
    assert_all_set_once,
    confirmed_count,
    make_daemon,
    oracle_config,
    start_daemon,
    write_config,
)

ROOT = Path(__file__).resolve().parents[2]


def earned(asset: Asset) -> float:
    return observe.EARNINGS.labels(asset=asset.name)._value.get()


def test_twenty_requests_across_tiers_and_both_rails_are_each_set_once(deployment, ipfs, tiny_model, tmp_path):
    """Every fourth request is paid in USDC, the rest in ETH: the daemon serves both alike, and its credit in
    each asset grows by exactly that asset's escrows less the fee."""
    buyers = [account_key(i) for i in range(2, 7)]
    prompts = ["a red fox", 'quotes " and \\ backslash', "multi-byte ü 漢字 🎨", "<b>html</b>", '{"json": 1}']
    in_usdc = [i % 4 == 3 for i in range(20)]
    token_ids = [(deployment.mint_usdc if in_usdc[i] else deployment.mint)(buyers[i % 5], f"{prompts[i % 5]} #{i}",
                                                                         i % 3) for i in range(20)]  # fmt: skip
    escrows = {Asset.ETH: 0, Asset.USDC: 0}
    paid = {Asset.ETH: 0, Asset.USDC: 0}
    for token_id in token_ids:
        request = deployment.nft.functions.request(token_id).call()
        asset, escrow = Asset(request[3]), request[5]
        escrows[asset] += escrow
        paid[asset] += escrow - escrow * FEE_BPS // 10_000
    assert escrows[Asset.USDC] == sum(USD_PRICES[i % 3] for i in range(20) if in_usdc[i])
    before = {asset: earned(asset) for asset in Asset}
    config = oracle_config(deployment, ipfs, tiny_model, tmp_path)
    daemon = make_daemon(config)
    assert daemon.drain(timeout=180)
    assert daemon.journal.counts()["confirmed"] == 20
    assert_all_set_once(deployment, ipfs, token_ids, tmp_path)
    assert deployment.nft.functions.credit(deployment.oracle.address).call() == paid[Asset.ETH]
    assert deployment.nft.functions.usdcCredit(deployment.oracle.address).call() == paid[Asset.USDC]
    assert {asset: earned(asset) - before[asset] for asset in Asset} == escrows
    assert {asset: escrow for asset, (_n, escrow) in daemon.journal.earnings().items()} == escrows
    # Batching: fewer transactions than images, none reverted.
    txs = {event["transactionHash"] for event in deployment.image_set_events()}
    assert len(txs) < 20
    for tx in txs:
        assert deployment.w3.eth.get_transaction_receipt(tx)["status"] == 1
    # The prompt is the description, exactly.
    client = IpfsClient(ipfs.api_url)
    uri = deployment.nft.functions.tokenURI(token_ids[2]).call()
    assert json.loads(client.cat(uri[7:]))["description"] == f"{prompts[2]} #2"


def test_each_aspect_ratio_is_generated_at_the_tier_budget_and_stated_in_metadata(
    deployment, ipfs, tiny_model, tmp_path
):
    """The aspect bound at mint shapes the image: tier 2's 128x128 budget in 16-pixel steps gives 1:1 128x128,
    16:9 176x96, 9:16 96x176, 4:3 144x112; the PNG and the metadata's Resolution say the same."""
    from genimnft.aspects import Aspect
    from genimnft.metadata import png_size

    expected = {Aspect.SQUARE: (128, 128), Aspect.LANDSCAPE: (176, 96), Aspect.PORTRAIT: (96, 176),
                Aspect.CLASSIC: (144, 112)}  # fmt: skip
    token_ids = {aspect: deployment.mint(account_key(2), f"shape {aspect.label}", 2, aspect) for aspect in Aspect}
    daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path))
    assert daemon.drain(timeout=120)
    assert_all_set_once(deployment, ipfs, list(token_ids.values()), tmp_path)
    client = IpfsClient(ipfs.api_url)
    for aspect, token_id in token_ids.items():
        document = json.loads(client.cat(deployment.nft.functions.tokenURI(token_id).call()[7:]))
        traits = {trait["trait_type"]: trait["value"] for trait in document["attributes"]}
        width, height = expected[aspect]
        assert png_size(client.cat(document["image"][7:])) == (width, height)
        assert traits["Resolution"] == f"{width}x{height}"
        assert traits["Aspect ratio"] == aspect.label
        assert width % 16 == 0 and height % 16 == 0


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_restart_mid_batch_loses_nothing_and_sets_nothing_twice(deployment, ipfs, tiny_model, tmp_path, stop):
    state = tmp_path / "state"
    config = oracle_config(deployment, ipfs, tiny_model, state, batch_size=3, generation_batch=2)
    config_path = write_config(config, tmp_path / "oracle.toml")
    token_ids = [deployment.mint(account_key(2 + i % 4), f"request {i}", i % 3) for i in range(12)]
    process = start_daemon(config_path)
    deadline = time.monotonic() + 120
    while confirmed_count(state) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(stop)
    process.wait(timeout=10)  # a clean stop takes seconds, not a generation's length
    assert 3 <= confirmed_count(state) < 12 or stop == signal.SIGTERM
    process = start_daemon(config_path)
    try:
        deadline = time.monotonic() + 120
        while confirmed_count(state) < 12 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert_all_set_once(deployment, ipfs, token_ids, state)
    oracle = deployment.oracle.address
    for event in deployment.image_set_events():
        assert deployment.w3.eth.get_transaction_receipt(event["transactionHash"])["from"] == oracle


def test_request_too_close_to_deadline_is_skipped_and_refundable(deployment, ipfs, tiny_model, tmp_path, devchain):
    buyer = account_key(2)
    token_id = deployment.mint(buyer, "late request", 0)
    devchain.rpc("evm_increaseTime", 3600 - 10)
    devchain.rpc("evm_mine")
    daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path))
    assert daemon.drain(timeout=60)
    job = daemon.journal.job(token_id)
    assert job is not None and job.state is JobState.SKIPPED and "deadline" in (job.note or "")
    assert deployment.image_set_events() == []
    devchain.rpc("evm_increaseTime", 60)
    devchain.rpc("evm_mine")
    deployment.send(buyer, deployment.nft.functions.refund(token_id))
    assert deployment.nft.functions.request(token_id).call()[0] == 3


def test_account_that_is_not_an_oracle_stops_the_daemon_at_start(deployment, ipfs, tiny_model, tmp_path):
    config = oracle_config(deployment, ipfs, tiny_model, tmp_path / "state", account="TEST::5")
    config_path = write_config(config, tmp_path / "oracle.toml")
    result = subprocess.run([sys.executable, "-m", "oracle.cli", "run", "--config", str(config_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"genim-oracle: account {account_key(5).address} is not an authorised oracle of {deployment.address}"
    )
    assert "Traceback" not in result.stderr


def test_second_daemon_on_the_same_state_directory_is_refused(tmp_path):
    first = Journal(tmp_path)
    first.lock()
    second = Journal(tmp_path)
    with pytest.raises(AlreadyRunning, match="another genim-oracle is running"):
        second.lock()
    first.close()
    second.lock()
    second.close()


def test_same_seed_same_settings_same_model_same_bytes(tiny_model):
    from oracle.config import TierSettings

    tiers = {0: TierSettings(model=str(tiny_model), width=64, height=64, steps=1)}
    seed = seed_for(10, "0x" + "ab" * 20, 7)
    assert seed == seed_for(10, "0x" + "ab" * 20, 7) != seed_for(10, "0x" + "ab" * 20, 8)
    first = Generator(tiers).generate(0, ["a red fox"], [seed])[0].png
    again = Generator(tiers).generate(0, ["a red fox"], [seed])[0].png
    other = Generator(tiers).generate(0, ["a red fox"], [seed + 1])[0].png
    assert first == again
    assert first != other


def test_metrics_health_and_status_show_what_the_daemon_did(deployment, ipfs, tiny_model, tmp_path):
    """One request paid in ETH and one in USDC: metrics and `status` show the earnings of each asset, and
    `withdraw` pays the ETH credit in ETH and the USDC credit in USDC."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from genim_devnet.localnet import free_port

    state, port = tmp_path / "state", free_port()
    config = oracle_config(deployment, ipfs, tiny_model, state, metrics_port=port)
    config_path = write_config(config, tmp_path / "oracle.toml")
    token_id = deployment.mint(account_key(2), "observed", 0)
    usdc_token = deployment.mint_usdc(account_key(3), "observed, paid in dollars", 1)
    eth_escrow = deployment.nft.functions.request(token_id).call()[5]
    process = start_daemon(config_path)
    try:
        deadline = time.monotonic() + 120
        while confirmed_count(state) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # one more loop publishes the counts
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'genim_jobs{state="confirmed"} 2.0' in metrics
        earnings = {sample.labels["asset"]: sample.value for family in text_string_to_metric_families(metrics)
                    for sample in family.samples if sample.name == "genim_earnings_total"}  # fmt: skip
        assert earnings == {"ETH": eth_escrow, "USDC": USD_PRICES[1]}
        assert "genim_generation_seconds_count" in metrics and "genim_gas_used_total" in metrics
        health = httpx.get(f"http://127.0.0.1:{port}/health")
        assert health.status_code == 200 and health.json()["healthy"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    status = subprocess.run([sys.executable, "-m", "oracle.cli", "status", "--config", str(config_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    report = json.loads(status.stdout)
    oracle, usdc = deployment.oracle.address, deployment.stack.usdc
    assert report["jobs"]["confirmed"] == 2
    assert report["earnings"] == {
        "ETH": {"images": 1, "escrow": eth_escrow, "amount": Asset.ETH.amount_text(eth_escrow)},
        "USDC": {"images": 1, "escrow": USD_PRICES[1], "amount": "0.3 USDC"},
    }
    usdc_paid = USD_PRICES[1] - USD_PRICES[1] * FEE_BPS // 10_000
    assert report["credit_wei"] == deployment.nft.functions.credit(oracle).call() > 0
    assert report["credit_usdc"] == deployment.nft.functions.usdcCredit(oracle).call() == usdc_paid
    assert [deployment.nft.functions.request(t).call()[0] for t in (token_id, usdc_token)] == [2, 2]
    before, usdc_before = deployment.w3.eth.get_balance(oracle), usdc.balance_of(oracle)
    withdraw = subprocess.run([sys.executable, "-m", "oracle.cli", "withdraw", "--config", str(config_path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert withdraw.returncode == 0, withdraw.stderr[-2000:]
    assert withdraw.stdout.startswith(f"withdrew {report['credit_wei']} wei and {usdc_paid} USDC units (0.285 USDC)")
    assert deployment.nft.functions.credit(oracle).call() == deployment.nft.functions.usdcCredit(oracle).call() == 0
    receipt = deployment.w3.eth.get_transaction_receipt(withdraw.stdout.split()[-3])
    gas_paid = receipt["gasUsed"] * receipt["effectiveGasPrice"] + int(receipt.get("l1Fee", "0x0"), 16)
    assert deployment.w3.eth.get_balance(oracle) == before + report["credit_wei"] - gas_paid
    assert usdc.balance_of(oracle) == usdc_before + usdc_paid
