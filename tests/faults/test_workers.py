"""Faults of the GPU worker pool (workers = "celery") on real parts: a RabbitMQ broker, anvil, a js-ipfs node,
the coordinator (`genim-oracle run`) and worker processes, each its own process. Workers run the tiny
diffusers model, or HoldingGeneratorDouble (genim_devnet/generator_double.py) in the real worker code path
where a case needs a job to last a known time. Each case adds a row to bench/results/reliability.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu
import pytest

from genim_devnet.broker import available, rabbitmq
from genim_devnet.generator_double import HoldingGeneratorDouble
from genimnft.metadata import raw_cid
from oracle.config import OracleConfig, fingerprint, load_config
from oracle.generate import Generator, seed_for
from oracle.journal import Journal
from oracle.messages import WorkResult
from oracle.wire import jobs_queue, results_queue
from tests.faults.test_faults import mint_batch, oracle_tx_counts, settle_report, stop
from tests.services import confirmed_count, oracle_config, start_daemon, start_worker, wait_for, write_config

pytestmark = pytest.mark.skipif(not available(), reason="rabbitmq-server is not installed (make setup)")
TIMEOUT = 3600  # the contract's default request timeout


def pool_config(deployment, ipfs, model, tmp_path: Path, broker, **overrides) -> Path:
    config = oracle_config(deployment, ipfs, model, tmp_path / "state", workers="celery", broker_url=broker.url,
                           **overrides)  # fmt: skip
    return write_config(config, tmp_path / "oracle.toml")


def log_entries(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def logged(log_path: Path, message: str, timeout: float = 60) -> bool:
    return wait_for(lambda: any(e.get("msg") == message for e in log_entries(log_path)), timeout)


def coordinator_ready(config_path: Path) -> None:
    assert logged(config_path.with_suffix(".log"), "coordinating GPU workers"), "the coordinator did not start"


def generating(log_path: Path) -> list[int]:
    return [entry["token_id"] for entry in log_entries(log_path) if entry.get("msg") == "generating"]


def journal_counts(state: Path) -> dict[str, int]:
    if not (state / "journal.sqlite3").exists():
        return {}
    journal = Journal(state)
    try:
        return journal.counts()
    finally:
        journal.close()


def kill9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@contextlib.contextmanager
def processes(*started: subprocess.Popen) -> Iterator[list[subprocess.Popen]]:
    """Stops (SIGTERM, then SIGKILL) every process still in the list at the end."""
    running = list(started)
    try:
        yield running
    finally:
        for process in running:
            if process.poll() is None:
                try:
                    stop(process)
                except subprocess.TimeoutExpired:
                    kill9(process)


@contextlib.contextmanager
def mining(devchain, every: float = 1.0) -> Iterator[None]:
    """An empty block every `every` seconds, so that chain time follows wall time on an automining anvil."""
    done = threading.Event()

    def mine() -> None:
        while not done.wait(every):
            devchain.rpc("evm_mine")

    thread = threading.Thread(target=mine, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def pool_images(deployment, config_path: Path, model: bool = False) -> Callable[[int], bytes]:
    """Each token's image as a worker must have made it: the worker's generator run again for the job's prompt
    and seed (the tiny model with `model`, else HoldingGeneratorDouble; both are deterministic)."""
    config = load_config(config_path, model=OracleConfig)
    generator = Generator(config.tiers, "cpu") if model else HoldingGeneratorDouble(config.tiers, hold=0)

    def expected(token_id: int) -> bytes:
        journal = Journal(config.state_dir)
        try:
            job = journal.job(token_id)
        finally:
            journal.close()
        assert job is not None
        seed = seed_for(deployment.w3.eth.chain_id, deployment.address, token_id)
        [image] = generator.generate(job.tier, [job.prompt], [seed], job.aspect)
        return image.png

    return expected


def publish_raw(broker, deployment, body: bytes | dict, **properties: object) -> None:
    """Straight onto the coordinator's results queue, as anyone who reaches the broker can."""
    options = {"serializer": "json"} if isinstance(body, dict) else properties
    with kombu.Connection(broker.url) as connection:
        connection.Producer().publish(body, routing_key=results_queue(deployment.w3.eth.chain_id, deployment.address),
                                      **options)  # fmt: skip


def purge(broker, deployment, config_path: Path) -> None:
    """Deletes this case's queues, so that nothing it left behind reaches the next case on the same broker."""
    config = load_config(config_path, model=OracleConfig)
    names = [jobs_queue(fingerprint(config.tiers)), results_queue(deployment.w3.eth.chain_id, deployment.address)]
    with kombu.Connection(broker.url) as connection:
        for name in names:
            with contextlib.suppress(Exception):
                connection.default_channel.queue_delete(name)


def row(fault: str, how: str, requests: int, outcome: dict, recovery: float, **extra) -> dict:
    return {"fault": fault, "how": how, "requests": requests, **outcome, "recovery_s": round(recovery, 1), **extra}


def test_worker_killed_mid_job_another_finishes_it(deployment, ipfs, tiny_model, tmp_path, broker, reliability):
    config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker)
    state = tmp_path / "state"
    with processes(start_worker(config_path, "w1", hold=2.0), start_worker(config_path, "w2", hold=2.0),
                   start_daemon(config_path)) as running:  # fmt: skip
        token_ids = mint_batch(deployment, 4, "worker killed")
        assert wait_for(lambda: generating(tmp_path / "w1.log"), timeout=60), "w1 never took a job"
        [victim] = generating(tmp_path / "w1.log")
        kill9(running[0])
        killed = time.monotonic()
        assert wait_for(lambda: confirmed_count(state) == 4, timeout=60)
        recovery = time.monotonic() - killed
    assert victim in generating(tmp_path / "w2.log"), "the killed worker's job was finished by the other one"
    outcome = settle_report(deployment, ipfs, token_ids, None, images=pool_images(deployment, config_path))
    purge(broker, deployment, config_path)
    reliability.append(row("worker kill -9 mid-job", "SIGKILL to a worker holding a job (2 s); 2 workers", 4,
                           outcome, recovery, note=f"token {victim} redelivered to the other worker"))  # fmt: skip


def test_broker_killed_and_restarted_while_jobs_are_queued(deployment, ipfs, tiny_model, tmp_path, reliability):
    with rabbitmq() as own:
        config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, own)
        state = tmp_path / "state"
        with processes(start_worker(config_path, "w1", hold=1.0), start_daemon(config_path)):
            token_ids = mint_batch(deployment, 6, "broker killed")
            assert wait_for(lambda: journal_counts(state).get("dispatched", 0) >= 5, timeout=60)
            time.sleep(1.5)  # the queues' declarations reach the broker's disk
            own.kill9()
            time.sleep(2)
            restarted = time.monotonic()
            own.start()
            assert wait_for(lambda: confirmed_count(state) == 6, timeout=90)
            recovery = time.monotonic() - restarted
    outcome = settle_report(deployment, ipfs, token_ids, None, images=pool_images(deployment, config_path))
    reliability.append(row("RabbitMQ kill -9 + restart", "broker SIGKILLed with 5 jobs queued, restarted 2 s later",
                           6, outcome, recovery))  # fmt: skip


def test_coordinator_killed_with_8_jobs_out(deployment, ipfs, tiny_model, tmp_path, broker, reliability):
    config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker)
    state = tmp_path / "state"
    with processes(start_worker(config_path, "w1", hold=1.5), start_worker(config_path, "w2", hold=1.5)):
        coordinator = start_daemon(config_path)
        token_ids = mint_batch(deployment, 8, "coordinator killed")
        assert wait_for(lambda: journal_counts(state).get("dispatched", 0) == 8, timeout=60)
        kill9(coordinator)
        restarted = time.monotonic()
        with processes(start_daemon(config_path)):
            assert wait_for(lambda: confirmed_count(state) == 8, timeout=90)
            recovery = time.monotonic() - restarted
    outcome = settle_report(deployment, ipfs, token_ids, None, images=pool_images(deployment, config_path))
    purge(broker, deployment, config_path)
    reliability.append(row("coordinator kill -9, 8 jobs out", "SIGKILL to the coordinator, restart; 2 workers", 8,
                           outcome, recovery, note="8 jobs re-sent from the journal"))  # fmt: skip


def test_worker_with_another_model_is_refused(deployment, ipfs, tiny_model, tmp_path, broker, reliability):
    config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker)
    other = oracle_config(deployment, ipfs, tiny_model, tmp_path / "other", workers="celery", broker_url=broker.url)
    other = other.model_copy(update={"tiers": {t: s.model_copy(update={"steps": 2}) for t, s in other.tiers.items()}})
    other_path = write_config(other, tmp_path / "other.toml")
    state = tmp_path / "state"
    coordinator_log = config_path.with_suffix(".log")

    def refusals() -> list[dict]:
        return [e for e in log_entries(coordinator_log) if "refused" in str(e.get("msg", ""))]

    with processes(start_daemon(config_path)) as running:
        coordinator_ready(config_path)  # the stale worker's first announcement must find the results queue
        running.append(start_worker(other_path, "stale", hold=0.1))
        token_ids = mint_batch(deployment, 3, "other model")
        assert wait_for(lambda: refusals(), timeout=90), "the coordinator did not refuse the stale worker"
        assert "tiers.0.steps 2 (here 1)" in refusals()[0]["msg"], "the refusal names the settings that differ"
        stale_log = tmp_path / "stale.log"
        assert wait_for(lambda: "refused by a coordinator" in stale_log.read_text(), timeout=30), "worker not told"
        assert wait_for(lambda: journal_counts(state).get("dispatched", 0) == 3, timeout=30)
        # A result forged with another fingerprint, straight onto the results queue, is refused too.
        cid, sha = raw_cid(b"forged"), hashlib.sha256(b"forged").hexdigest()
        forged = WorkResult(kind="result", worker="forger", fingerprint="0" * 16, token_id=token_ids[0], attempt=1,
                            image_cid=cid, metadata_cid=cid, digest=sha, image_sha256=sha)  # fmt: skip
        publish_raw(broker, deployment, forged.model_dump())
        assert wait_for(lambda: len(refusals()) >= 2, timeout=30)
        assert confirmed_count(state) == 0 and not generating(tmp_path / "stale.log")
        started = time.monotonic()
        running.append(start_worker(config_path, "good"))
        assert wait_for(lambda: confirmed_count(state) == 3, timeout=120)
        recovery = time.monotonic() - started
    outcome = settle_report(deployment, ipfs, token_ids, None, images=pool_images(deployment, config_path, model=True))
    assert "stale" in refusals()[0]["msg"]
    purge(broker, deployment, config_path)
    note = "stale worker got no job; a forged result was refused"
    reliability.append(row("worker with another model", "steps=2 worker refused, then a tiny-model worker",
                           3, outcome, recovery, note=note))  # fmt: skip


def test_every_worker_gone_past_the_margin_leaves_requests_refundable(
    deployment, devchain, ipfs, tiny_model, tmp_path, broker, reliability
):
    # A margin that leaves each request 6 s to be served after its mint.
    config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker, deadline_margin=TIMEOUT - 6)
    state = tmp_path / "state"
    with mining(devchain), processes(start_daemon(config_path)) as running:
        coordinator_ready(config_path)
        started = time.monotonic()
        token_ids = mint_batch(deployment, 2, "nobody home")
        assert wait_for(lambda: journal_counts(state).get("skipped", 0) == 2, timeout=60)
        settled = time.monotonic() - started
        running.append(start_worker(config_path, "late", hold=0.2))
        assert logged(tmp_path / "late.log", "announced")
        time.sleep(3)
        assert generating(tmp_path / "late.log") == [], "expired jobs must be discarded by the worker"
    per_token, reverted = oracle_tx_counts(deployment)
    assert not per_token and reverted == 0
    outcome = settle_report(deployment, ipfs, token_ids, None, pending=tuple(token_ids))
    refund_all(deployment, devchain, token_ids)
    purge(broker, deployment, config_path)
    note = "requests left Pending, refunded; expired jobs discarded"
    reliability.append(row("every worker gone past the margin", "no worker for longer than the request's margin",
                           2, outcome, settled, note=note))  # fmt: skip


def test_result_after_its_job_expired_is_dropped(deployment, devchain, ipfs, tiny_model, tmp_path, broker, reliability):
    config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker, deadline_margin=TIMEOUT - 4)
    state = tmp_path / "state"
    with processes(start_worker(config_path, "slow", hold=7.0)), mining(devchain), processes(start_daemon(config_path)):
        coordinator_ready(config_path)
        assert logged(tmp_path / "slow.log", "announced")
        started = time.monotonic()
        token_ids = mint_batch(deployment, 1, "too slow")
        assert wait_for(lambda: journal_counts(state).get("skipped", 0) == 1, timeout=60)
        assert "while out with the workers" in (Journal(state).job(token_ids[0]).note or "")

        def dropped() -> list[dict]:
            entries = log_entries(config_path.with_suffix(".log"))
            return [e for e in entries if e.get("msg") == "result dropped (expired)"]

        assert wait_for(lambda: dropped(), timeout=30), "the late result never reached the coordinator"
        settled = time.monotonic() - started
    assert generating(tmp_path / "slow.log") == token_ids
    outcome = settle_report(deployment, ipfs, token_ids, None, pending=tuple(token_ids))
    refund_all(deployment, devchain, token_ids)
    purge(broker, deployment, config_path)
    reliability.append(row("result after its job expired", "worker holds 7 s, margin leaves 4 s", 1, outcome,
                           settled, note="late result dropped, nothing sent, refunded"))  # fmt: skip


def refund_all(deployment, devchain, token_ids) -> None:
    from tests.services import account_key

    devchain.rpc("evm_increaseTime", TIMEOUT)
    devchain.rpc("evm_mine")
    for token_id in token_ids:
        deployment.send(account_key(2), deployment.nft.functions.refund(token_id))
        assert deployment.nft.functions.request(token_id).call()[0] == 3, f"token {token_id} should be refunded"
