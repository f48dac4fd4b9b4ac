"""Messages the coordinator did not expect, published straight onto its results queue (anyone who reaches the
broker can): each is rejected for good (not requeued), said in one log line and counted in
genim_results_refused_total, and the coordinator keeps serving the real results queued behind them. Nothing of
a message reaches the log or the journal beyond a bounded line.
"""

from __future__ import annotations

import pickle
import time
import urllib.request

import kombu

from genim_devnet.localnet import free_port
from oracle.config import OracleConfig, fingerprint, load_config
from oracle.wire import results_queue
from tests.faults.test_faults import mint_batch, settle_report
from tests.faults.test_workers import (
    coordinator_ready,
    log_entries,
    pool_config,
    pool_images,
    processes,
    publish_raw,
    purge,
    row,
)
from tests.services import confirmed_count, start_daemon, start_worker, wait_for

MB = 1024 * 1024


def hostile_messages(fp: str) -> dict[str, tuple[str, bytes | dict, dict]]:
    """name: (the reason it is refused for, body, publish properties)."""
    hello = {"kind": "hello", "worker": "intruder", "fingerprint": fp}
    result = {**hello, "kind": "result", "token_id": 1, "attempt": 1}
    pickled = {"content_type": "application/x-python-serialize", "content_encoding": "binary"}
    gzipped = {"content_type": "application/json", "content_encoding": "utf-8", "compression": "application/x-gzip"}
    never_dispatched = {**hello, "kind": "failure", "token_id": 999_999, "attempt": 1, "error": "e"}
    return {
        "worker as a list": ("schema", {**hello, "worker": ["a", "b"]}, {}),
        "token_id as an object": ("schema", {**result, "token_id": {"$gt": 0}}, {}),
        "unknown kind": ("schema", {**hello, "kind": "reboot"}, {}),
        "pickled body": ("encoding", pickle.dumps(result), pickled),
        "compressed garbage": ("schema", b"\x1f\x8b not gzip", gzipped),
        "8 MB message": ("size", {**hello, "worker": "w" * (8 * MB)}, {}),
        "a job never dispatched": ("unknown_job", never_dispatched, {}),
    }


def test_hostile_result_messages_are_rejected_and_the_coordinator_keeps_serving(
    deployment, ipfs, tiny_model, tmp_path, broker, reliability
):
    metrics_port = free_port()
    config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker, metrics_port=metrics_port)
    state = tmp_path / "state"
    log_path = config_path.with_suffix(".log")
    hostile = hostile_messages(fingerprint(load_config(config_path, model=OracleConfig).tiers))
    with processes(start_daemon(config_path), start_worker(config_path, "w1", hold=1.0)) as running:
        coordinator_ready(config_path)
        log_before = log_path.stat().st_size
        token_ids = mint_batch(deployment, 3, "behind hostile messages")
        published = time.monotonic()
        for _reason, body, properties in hostile.values():
            publish_raw(broker, deployment, body, **properties)
        assert wait_for(lambda: len(rejections(log_path)) >= len(hostile), timeout=60), rejections(log_path)
        assert wait_for(lambda: confirmed_count(state) == 3, timeout=90), "the coordinator stopped serving"
        recovery = time.monotonic() - published
        assert running[0].poll() is None, "the coordinator must survive every message"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert queue_depth(broker, deployment) == 0, "a rejected message stayed in the queue"
    lines = rejections(log_path)
    assert len(lines) == len(hostile), "each message is said once"
    for reason in {reason for reason, _body, _properties in hostile.values()}:
        expected = sum(1 for r, _b, _p in hostile.values() if r == reason)
        assert f'genim_results_refused_total{{reason="{reason}"}} {float(expected)}' in metrics, reason
    assert all(len(str(entry["msg"])) < 300 for entry in lines), "one bounded line each"
    assert log_path.stat().st_size - log_before < 256 * 1024, "the log grew with the messages"
    journal_bytes = sum(f.stat().st_size for f in state.glob("journal.sqlite3*"))
    assert journal_bytes < 2 * MB, f"the journal grew to {journal_bytes} bytes"
    assert not any("corrupt" in str(e.get("msg", "")) for e in log_entries(log_path))
    outcome = settle_report(deployment, ipfs, token_ids, None, images=pool_images(deployment, config_path))
    purge(broker, deployment, config_path)
    how = "published straight onto the results queue: " + ", ".join(hostile)
    reliability.append(row("result messages the coordinator did not expect", how, 3, outcome, recovery,
                           note="each rejected without requeue, one log line, counted; 3 requests served behind "
                                "them (recovery: from the publish to the last image set)"))  # fmt: skip


def rejections(log_path) -> list[dict]:
    return [e for e in log_entries(log_path) if str(e.get("msg", "")).startswith("result message rejected")]


def queue_depth(broker, deployment) -> int:
    name = results_queue(deployment.w3.eth.chain_id, deployment.address)
    with kombu.Connection(broker.url) as connection:
        return connection.default_channel.queue_declare(name, passive=True).message_count
