"""Fault injection on real parts (anvil, a js-ipfs node, the diffusers code path with the tiny model).

Each case mints a batch, injects a fault, lets the system recover, then checks that every request was set
exactly once (or, where the case says so, is still Pending and refundable), that no oracle transaction
reverted or named a token twice, and that every tokenURI resolves through IPFS to metadata whose image
resolves too. Each case adds a row to bench/results/reliability.json (the README's Reliability table).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from genim_devnet.localnet import free_port, ipfs_node
from genimnft.ipfs import IpfsClient
from oracle.journal import JobState, Journal
from tests.faults.proxy import RpcProxy
from tests.services import (
    ROOT,
    account_key,
    assert_all_set_once,
    confirmed_count,
    make_daemon,
    oracle_config,
    start_daemon,
    wait_for,
    write_config,
)


def oracle_tx_counts(deployment) -> tuple[Counter, int]:
    """How many mined oracle transactions name each token, and how many of them reverted."""
    per_token: Counter = Counter()
    reverted = 0
    oracle = deployment.oracle.address
    for number in range(deployment.block, deployment.w3.eth.block_number + 1):
        for tx in deployment.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] != oracle:
                continue
            reverted += deployment.w3.eth.get_transaction_receipt(tx["hash"])["status"] == 0
            _function, args = deployment.nft.decode_function_input(tx["input"])
            per_token.update(args["tokenIds"] if "tokenIds" in args else [args["tokenId"]])
    return per_token, reverted


def settle_report(
    deployment, ipfs, token_ids, state_dir: Path | None, pending: tuple[int, ...] = (),
    images: Callable[[int], bytes] | None = None,
) -> dict:  # fmt: skip
    """Asserts the outcome every case promises; returns the lost, duplicated and wrong-image counts for the report.
    Each token's image must be the one generated for it: the daemon's file in `state_dir`, or, for GPU workers,
    `images(token_id)` (without either the image is only checked to be a PNG, and no wrong-image count is given)."""
    fulfilled = [t for t in token_ids if t not in pending]
    assert_all_set_once(deployment, ipfs, fulfilled, state_dir)
    for token_id in pending:
        assert deployment.nft.functions.request(token_id).call()[0] == 1, f"token {token_id} should be pending"
    per_token, reverted = oracle_tx_counts(deployment)
    duplicated = sum(1 for t in token_ids if per_token[t] > 1)
    wrong = wrong_images(deployment, ipfs, fulfilled, images) if images else 0
    assert reverted == 0 and duplicated == 0 and wrong == 0, (
        f"reverted={reverted} duplicated={duplicated} wrong={wrong}"
    )
    lost = sum(1 for t in fulfilled if per_token[t] != 1)
    checked = state_dir is not None or images is not None or not fulfilled
    return {"lost": lost, "duplicated": duplicated, **({"wrong_image": wrong} if checked else {}), "wasted": reverted}


def wrong_images(deployment, ipfs, token_ids, images: Callable[[int], bytes]) -> int:
    """Tokens whose tokenURI leads to another image than the one generated for them."""
    client = IpfsClient(ipfs.api_url)
    wrong = 0
    for token_id in token_ids:
        metadata = client.cat(deployment.nft.functions.tokenURI(token_id).call().removeprefix("ipfs://"))
        wrong += client.cat(json.loads(metadata)["image"].removeprefix("ipfs://")) != images(token_id)
    return wrong


def mint_batch(deployment, count: int, prefix: str) -> list[int]:
    return [deployment.mint(account_key(2 + i % 5), f"{prefix} {i}", i % 3) for i in range(count)]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


CRASH_POINTS = ["seen", "generating", "generated", "image_pinned", "metadata_pinned", "submitted"]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_9_at_each_stage_then_restart(deployment, ipfs, tiny_model, tmp_path, point, reliability):
    state = tmp_path / "state"
    config = oracle_config(deployment, ipfs, tiny_model, state, generation_batch=2, batch_size=4)
    config_path = write_config(config, tmp_path / "oracle.toml")
    token_ids = mint_batch(deployment, 4, f"crash at {point}")
    process = start_daemon(config_path, GENIM_CRASH_AT=point)
    assert process.wait(timeout=90) == -signal.SIGKILL, "the daemon should have been killed at the crash point"
    assert (state / f"crashed-at-{point}").exists()
    restarted = time.monotonic()
    process = start_daemon(config_path)
    try:
        assert wait_for(lambda: confirmed_count(state) == 4, timeout=90)
        recovery = time.monotonic() - restarted
    finally:
        stop(process)
    outcome = settle_report(deployment, ipfs, token_ids, state)
    reliability.append({"fault": f"kill -9 {point}", "how": f"SIGKILL at fault point {point!r}, restart",
                        "requests": 4, **outcome, "recovery_s": round(recovery, 1)})  # fmt: skip


@pytest.mark.parametrize(("mode", "seconds"), [("down", 30), ("error", 5), ("hang", 5)])
def test_rpc_outage(deployment, devchain, ipfs, tiny_model, tmp_path, mode, seconds, reliability):
    proxy = RpcProxy(int(devchain.url.rsplit(":", 1)[1]), free_port())
    proxy.start()
    state = tmp_path / "state"
    config = oracle_config(deployment, ipfs, tiny_model, state, rpc_uri=proxy.url, rpc_timeout=2.0)
    config_path = write_config(config, tmp_path / "oracle.toml")
    token_ids = mint_batch(deployment, 4, "before the outage")
    process = start_daemon(config_path)
    try:
        assert wait_for(lambda: confirmed_count(state) >= 1, timeout=90)
        if mode == "down":
            proxy.stop()
        else:
            proxy.set_mode(mode)
        token_ids += mint_batch(deployment, 3, "during the outage")  # straight to anvil, not through the proxy
        time.sleep(seconds)
        assert process.poll() is None, "the daemon must wait out an RPC outage, not exit"
        assert sum(_journal_counts(state).values()) == 4, "the outage was real: the new requests are not seen yet"
        restored = time.monotonic()
        if mode == "down":
            proxy.start()
        else:
            proxy.set_mode("pass")
        assert wait_for(lambda: confirmed_count(state) == len(token_ids), timeout=90)
        recovery = time.monotonic() - restored
    finally:
        stop(process)
        proxy.stop()
    outcome = settle_report(deployment, ipfs, token_ids, state)
    how = {"down": "TCP proxy closed (refused)", "error": "HTTP 503 on every call", "hang": "no answer (timeouts)"}
    reliability.append({"fault": f"RPC {mode} {seconds} s", "how": how[mode], "requests": len(token_ids),
                        **outcome, "recovery_s": round(recovery, 1)})  # fmt: skip


def test_ipfs_outage_during_pinning(deployment, tiny_model, tmp_path, reliability):
    with ipfs_node() as node:
        state = tmp_path / "state"
        config_path = write_config(oracle_config(deployment, node, tiny_model, state), tmp_path / "oracle.toml")
        token_ids = mint_batch(deployment, 1, "pinned before the outage")
        process = start_daemon(config_path)
        try:
            assert wait_for(lambda: confirmed_count(state) == 1, timeout=90)
            node.stop()
            token_ids += mint_batch(deployment, 4, "pinned after the outage")
            assert wait_for(lambda: (_journal_counts(state) or {}).get("generated", 0) >= 1, timeout=60)
            time.sleep(3)  # pinning keeps failing meanwhile
            assert process.poll() is None
            restored = time.monotonic()
            node.start()
            assert wait_for(lambda: confirmed_count(state) == 5, timeout=90)
            recovery = time.monotonic() - restored
        finally:
            stop(process)
        outcome = settle_report(deployment, node, token_ids, state)
    reliability.append({"fault": "IPFS node down", "how": "node stopped while images wait to be pinned",
                        "requests": 5, **outcome, "recovery_s": round(recovery, 1)})  # fmt: skip


class FailingPipeline:
    """Test double around the real pipeline: raises out-of-memory for prompts containing "OOM" and returns NaN
    pixels for prompts containing "NaN"; everything else goes through the real diffusers call."""

    def __init__(self, real) -> None:
        self.real = real

    def __call__(self, prompt: list[str], **kwargs):
        if any("OOM" in p for p in prompt):
            raise torch.OutOfMemoryError("CUDA out of memory (injected by the test double)")
        result = self.real(prompt=prompt, **kwargs)
        for i, text in enumerate(prompt):
            if "NaN" in text:
                result.images[i] = np.full_like(result.images[i], np.nan)
        return result


def test_model_failure_is_retried_then_left_refundable(deployment, devchain, ipfs, tiny_model, tmp_path, reliability):
    good = [deployment.mint(account_key(2), f"fine {i}", 0) for i in range(3)]
    bad = [deployment.mint(account_key(3), "OOM please", 0), deployment.mint(account_key(3), "NaN please", 0)]
    daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path, max_generation_attempts=2))
    real_load = daemon.generator.load
    daemon.generator.load = lambda tier: FailingPipeline(real_load(tier))
    started = time.monotonic()
    assert daemon.drain(timeout=120)
    for token_id in bad:
        job = daemon.journal.job(token_id)
        assert job is not None and job.state is JobState.FAILED and job.attempts == 2
    outcome = settle_report(deployment, ipfs, good + bad, tmp_path, pending=tuple(bad))
    devchain.rpc("evm_increaseTime", 3600)
    devchain.rpc("evm_mine")
    for token_id in bad:
        deployment.send(account_key(3), deployment.nft.functions.refund(token_id))
        assert deployment.nft.functions.request(token_id).call()[0] == 3
    reliability.append({"fault": "model raises OOM / NaN image", "how": "test double around the real pipeline",
                        "requests": 5, **outcome, "recovery_s": round(time.monotonic() - started, 1),
                        "note": "2 failing requests left Pending and refunded"})  # fmt: skip


def test_reorg_drops_a_mint_and_an_oracle_transaction(tmp_path, ipfs, tiny_model, project, reliability):
    from genim_devnet.localnet import anvil
    from tests.services import Deployment

    with anvil() as chain:
        deployment = Deployment(chain.url, project.GenImNFT.contract_type)
        config = oracle_config(deployment, ipfs, tiny_model, tmp_path, confirmations=2)
        daemon = make_daemon(config)
        # 1. A mint in a block that is reorganised away is never acted on.
        before_orphan = chain.rpc("evm_snapshot")
        orphan = deployment.mint(account_key(2), "ORPHANED prompt", 0)
        daemon.recover()
        for _ in range(3):
            daemon.step()
        chain.rpc("evm_revert", before_orphan)
        for _ in range(3):
            chain.rpc("evm_mine")
        canonical = deployment.mint(account_key(3), "canonical prompt", 0)
        assert canonical == orphan  # the same token id, now with another prompt
        for _ in range(2):
            chain.rpc("evm_mine")
        # 2. Our setImage, mined but not yet 2 blocks deep, is dropped by a reorg and re-broadcast.
        before_image = chain.rpc("evm_snapshot")
        assert wait_for(lambda: _step_until(daemon, canonical, JobState.SUBMITTED), timeout=60)
        daemon.step()  # sees it mined, not deep enough
        assert deployment.nft.functions.request(canonical).call()[0] == 2
        chain.rpc("evm_revert", before_image)
        assert deployment.nft.functions.request(canonical).call()[0] == 1
        started = time.monotonic()
        miner = _Miner(chain)
        try:
            assert daemon.drain(timeout=60)
        finally:
            miner.stop()
        job = daemon.journal.job(canonical)
        assert job is not None and job.state is JobState.CONFIRMED and job.prompt == "canonical prompt"
        assert len({tx.hash for tx in daemon.journal.txs()}) == 1, "re-broadcast, not re-signed"
        outcome = settle_report(deployment, ipfs, [canonical], tmp_path)
        description = deployment.nft.functions.tokenURI(canonical).call()
        assert description.startswith("ipfs://bafkrei")
    reliability.append({"fault": "reorg (mint and setImage blocks)", "how": "evm_snapshot / evm_revert",
                        "requests": 2, **outcome, "recovery_s": round(time.monotonic() - started, 1),
                        "note": "orphaned request never generated; dropped setImage re-broadcast"})  # fmt: skip


def test_stuck_transaction_is_replaced_with_a_higher_fee(deployment, devchain, ipfs, tiny_model, tmp_path, reliability):
    token_id = deployment.mint(account_key(2), "stuck", 0)
    daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path, tx_timeout=1.0, batch_wait=0))
    devchain.rpc("evm_setAutomine", False)  # the transaction waits in the pool
    daemon.recover()
    assert wait_for(lambda: _step_until(daemon, token_id, JobState.SUBMITTED), timeout=60)
    [stuck] = daemon.journal.pending_txs()
    base = deployment.w3.eth.get_block("latest")["baseFeePerGas"]
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(max(stuck.max_fee * 2, base * 8)))
    devchain.rpc("evm_mine")  # a block our transaction cannot enter: its fee cap is below the base fee
    assert deployment.nft.functions.request(token_id).call()[0] == 1
    started = time.monotonic()
    time.sleep(1.1)
    daemon.step()  # replaces it: same nonce, higher fees
    devchain.rpc("evm_setAutomine", True)
    devchain.rpc("evm_mine")
    assert daemon.drain(timeout=30)
    txs = daemon.journal.txs()
    assert {tx.nonce for tx in txs} == {stuck.nonce} and len(txs) == 2
    assert max(tx.max_fee for tx in txs) > stuck.max_fee
    outcome = settle_report(deployment, ipfs, [token_id], tmp_path)
    reliability.append({"fault": "stuck transaction", "how": "base fee raised above the fee cap",
                        "requests": 1, **outcome, "recovery_s": round(time.monotonic() - started, 1),
                        "note": "replaced at the same nonce"})  # fmt: skip


def test_second_daemon_process_refuses_to_run(deployment, ipfs, tiny_model, tmp_path):
    config_path = write_config(oracle_config(deployment, ipfs, tiny_model, tmp_path / "s"), tmp_path / "o.toml")
    first = start_daemon(config_path)
    try:
        assert wait_for(lambda: _journal_counts(tmp_path / "s") is not None, timeout=60)
        second = subprocess.run([sys.executable, "-m", "oracle.cli", "run", "--config", str(config_path)],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
        assert second.returncode == 2
        assert second.stderr.strip().endswith(f"another genim-oracle is running on {tmp_path / 's'}")
        assert first.poll() is None
    finally:
        stop(first)


def test_deadline_passing_while_queued_is_skipped_not_sent(
    deployment, devchain, ipfs, tiny_model, tmp_path, reliability
):
    deployment.send(deployment.owner, deployment.nft.functions.setTimeout(300))
    token_ids = mint_batch(deployment, 3, "slow queue")
    daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path, deadline_margin=30))
    real_generate = daemon.generator.generate

    def generate_while_time_passes(*args, **kwargs):
        devchain.rpc("evm_increaseTime", 280)  # 20 s left: inside the 30 s margin when it comes to submit
        devchain.rpc("evm_mine")
        return real_generate(*args, **kwargs)

    daemon.generator.generate = generate_while_time_passes
    assert daemon.drain(timeout=60)
    for token_id in token_ids:
        job = daemon.journal.job(token_id)
        assert job is not None and job.state is JobState.SKIPPED and "deadline" in (job.note or "")
    assert daemon.journal.pending_txs() == [] and deployment.image_set_events() == []
    assert oracle_tx_counts(deployment) == (Counter(), 0)
    devchain.rpc("evm_increaseTime", 30)
    devchain.rpc("evm_mine")
    for i, token_id in enumerate(token_ids):
        deployment.send(account_key(2 + i % 5), deployment.nft.functions.refund(token_id))
    reliability.append({"fault": "deadline passes while queued", "how": "chain time warped during generation",
                        "requests": 3, "lost": 0, "duplicated": 0, "recovery_s": 0,
                        "note": "skipped, no transaction sent; all 3 refunded"})  # fmt: skip


# helpers


def _journal_counts(state: Path) -> dict | None:
    if not (state / "journal.sqlite3").exists():
        return None
    journal = Journal(state)
    try:
        return journal.counts()
    finally:
        journal.close()


def _step_until(daemon, token_id: int, state: JobState) -> bool:
    daemon.step()
    job = daemon.journal.job(token_id)
    return job is not None and job.state is state


class _Miner:
    """Mines a block every 0.2 s so confirmations accrue while the daemon drains."""

    def __init__(self, chain) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(chain,), daemon=True)
        self._thread.start()

    def _run(self, chain) -> None:
        while not self._stop.wait(0.2):
            chain.rpc("evm_mine")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_oracle_revoked_mid_flight_sends_nothing_and_serves_only_later_mints(
    deployment, devchain, ipfs, tiny_model, tmp_path, reliability
):
    """Consent at mint: once revoked, this oracle can never settle the tokens minted before (re-authorising
    starts from the next token). The daemon sends nothing for them and leaves them Pending for refunds; after
    re-authorisation it serves the new mints."""
    token_ids = mint_batch(deployment, 2, "revoked")
    daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path, batch_wait=0))
    daemon.recover()
    daemon.step()  # sees both and starts generating them in the background
    assert daemon.journal.job(token_ids[0]) is not None
    revoke = deployment.nft.functions.setOracle(deployment.oracle.address, False)
    deployment.send(deployment.owner, revoke)
    assert wait_for(lambda: _step_until(daemon, token_ids[-1], JobState.SKIPPED), timeout=60)
    daemon.step()
    assert daemon.journal.txs() == [] and deployment.image_set_events() == []
    for token_id in token_ids:
        job = daemon.journal.job(token_id)
        assert job.state is JobState.SKIPPED and "without this oracle's consent" in job.note
    restored = time.monotonic()
    deployment.send(deployment.owner, deployment.nft.functions.setOracle(deployment.oracle.address, True))
    later = mint_batch(deployment, 2, "after re-authorisation")
    assert daemon.drain(timeout=60)
    outcome = settle_report(deployment, ipfs, token_ids + later, tmp_path, pending=tuple(token_ids))
    served = time.monotonic() - restored
    devchain.rpc("evm_increaseTime", 2 * 3600)
    devchain.rpc("evm_mine")
    for token_id in token_ids:
        deployment.send(account_key(7), deployment.nft.functions.refund(token_id))  # anyone may trigger it
        assert deployment.nft.functions.request(token_id).call()[0] == 3  # Refunded
    reliability.append({"fault": "oracle revoked mid-flight", "how": "owner revokes, later re-authorises",
                        "requests": 4, **outcome, "recovery_s": round(served, 1),
                        "note": "nothing sent for 2 minted before (refunded); 2 minted after served"})  # fmt: skip
