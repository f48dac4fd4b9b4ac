"""The daemon end to end on real parts: anvil, a js-ipfs node, the diffusers code path (tiny model)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from oracle.generate import Generator, seed_for
from oracle.ipfs import IpfsClient
from oracle.journal import AlreadyRunning, JobState, Journal
from oracle.metadata import cid_of_digest, raw_cid
from tests.services import FEE_BPS, PRICES, account_key, make_daemon, oracle_config

ROOT = Path(__file__).resolve().parents[2]


def assert_all_set_once(deployment, ipfs, token_ids, state_dir: Path) -> None:
    counts = Counter(event["args"]["tokenId"] for event in deployment.image_set_events())
    assert {t: counts[t] for t in token_ids} == dict.fromkeys(token_ids, 1)
    client = IpfsClient(ipfs.api_url)
    for token_id in token_ids:
        status, _tier, _deadline, _escrow, digest = deployment.nft.functions.request(token_id).call()
        assert status == 2
        uri = deployment.nft.functions.tokenURI(token_id).call()
        metadata = client.cat(uri.removeprefix("ipfs://"))
        assert hashlib.sha256(metadata).digest() == digest
        assert uri == f"ipfs://{raw_cid(metadata)}" == f"ipfs://{cid_of_digest(digest)}"
        document = __import__("json").loads(metadata)
        image = client.cat(document["image"].removeprefix("ipfs://"))
        assert image == (state_dir / "images" / f"{token_id}.png").read_bytes()
        assert image.startswith(b"\x89PNG")


def test_twenty_requests_across_tiers_are_each_set_once(deployment, ipfs, tiny_model, tmp_path):
    buyers = [account_key(i) for i in range(2, 7)]
    prompts = ["a red fox", 'quotes " and \\ backslash', "multi-byte ü 漢字 🎨", "<b>html</b>", '{"json": 1}']
    token_ids = [deployment.mint(buyers[i % 5], f"{prompts[i % 5]} #{i}", i % 3) for i in range(20)]
    config = oracle_config(deployment, ipfs, tiny_model, tmp_path)
    daemon = make_daemon(config)
    assert daemon.drain(timeout=180)
    assert daemon.journal.counts()["confirmed"] == 20
    assert_all_set_once(deployment, ipfs, token_ids, tmp_path)
    paid = sum(PRICES[i % 3] - PRICES[i % 3] * FEE_BPS // 10_000 for i in range(20))
    assert deployment.nft.functions.credit(deployment.oracle.address).call() == paid
    # Batching: fewer transactions than images, none reverted.
    txs = {event["transactionHash"] for event in deployment.image_set_events()}
    assert len(txs) < 20
    for tx in txs:
        assert deployment.w3.eth.get_transaction_receipt(tx)["status"] == 1
    # The prompt is the description, exactly.
    client = IpfsClient(ipfs.api_url)
    uri = deployment.nft.functions.tokenURI(token_ids[2]).call()
    assert __import__("json").loads(client.cat(uri[7:]))["description"] == f"{prompts[2]} #2"


def _start_daemon(config_path: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "oracle.cli", "run", "--config", str(config_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)  # fmt: skip


def _write_config(config, path: Path) -> Path:
    lines = [f'network = "{config.network}"', f'rpc_uri = "{config.rpc_uri}"', f'contract = "{config.contract}"',
             f'account = "{config.account}"', f'ipfs_api = "{config.ipfs_api}"', f'state_dir = "{config.state_dir}"',
             f"start_block = {config.start_block}", "poll_interval = 0.2", "batch_wait = 0.3", "metrics_port = 0",
             "batch_size = 3", "generation_batch = 2", "deadline_margin = 30"]  # fmt: skip
    for tier, settings in config.tiers.items():
        lines += [f"[tiers.{tier}]", f'model = "{settings.model}"', f"width = {settings.width}",
                  f"height = {settings.height}", "steps = 1"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _confirmed(state_dir: Path) -> int:
    journal = Journal(state_dir)
    try:
        return journal.counts()["confirmed"]
    finally:
        journal.close()


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_restart_mid_batch_loses_nothing_and_sets_nothing_twice(deployment, ipfs, tiny_model, tmp_path, stop):
    state = tmp_path / "state"
    config_path = _write_config(oracle_config(deployment, ipfs, tiny_model, state), tmp_path / "oracle.toml")
    token_ids = [deployment.mint(account_key(2 + i % 4), f"request {i}", i % 3) for i in range(12)]
    process = _start_daemon(config_path)
    deadline = time.monotonic() + 120
    while _confirmed(state) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(stop)
    process.wait(timeout=10)  # a clean stop takes seconds, not a generation's length
    assert 3 <= _confirmed(state) < 12 or stop == signal.SIGTERM
    process = _start_daemon(config_path)
    try:
        deadline = time.monotonic() + 120
        while _confirmed(state) < 12 and time.monotonic() < deadline:
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
    config_path = _write_config(config, tmp_path / "oracle.toml")
    config_path.write_text(config_path.read_text().replace('account = "TEST::1"', 'account = "TEST::5"'))
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
    import httpx

    from oracle.localnet import free_port

    state, port = tmp_path / "state", free_port()
    config_path = _write_config(oracle_config(deployment, ipfs, tiny_model, state), tmp_path / "oracle.toml")
    config_path.write_text(config_path.read_text().replace("metrics_port = 0", f"metrics_port = {port}"))
    token_id = deployment.mint(account_key(2), "observed", 0)
    process = _start_daemon(config_path)
    try:
        deadline = time.monotonic() + 120
        while _confirmed(state) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # one more loop publishes the counts
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'genim_jobs{state="confirmed"} 1.0' in metrics
        assert "genim_generation_seconds_count" in metrics and "genim_gas_used_total" in metrics
        health = httpx.get(f"http://127.0.0.1:{port}/health")
        assert health.status_code == 200 and health.json()["healthy"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    status = subprocess.run([sys.executable, "-m", "oracle.cli", "status", "--config", str(config_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    report = __import__("json").loads(status.stdout)
    assert report["jobs"]["confirmed"] == 1
    assert report["credit_wei"] == deployment.nft.functions.credit(deployment.oracle.address).call() > 0
    assert deployment.nft.functions.request(token_id).call()[0] == 2
