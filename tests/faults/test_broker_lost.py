"""The broker comes back without its disk: every job queued and every result not yet taken is gone, and so are
the queues. The coordinator sees the outage (its take fails, a publish fails, or Celery reconnects under a
publish) and sends every job the journal has out again; the worker that held a job through the outage publishes
its result into the results queue it declares itself, confirmed, so it is not routed into nothing.
"""

from __future__ import annotations

import time

from genim_devnet.broker import rabbitmq
from tests.faults.test_faults import mint_batch, settle_report
from tests.faults.test_workers import (
    coordinator_ready,
    generating,
    journal_counts,
    log_entries,
    pool_config,
    pool_images,
    processes,
    row,
)
from tests.services import confirmed_count, start_daemon, start_worker, wait_for

OUTAGE = "broker outage: every job out will be sent again once it answers"


def test_broker_restarts_without_its_disk_with_6_jobs_out(deployment, ipfs, tiny_model, tmp_path, reliability):
    with rabbitmq() as own:
        config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, own)  # dispatch_timeout: 900 s
        state = tmp_path / "state"
        with processes(start_daemon(config_path), start_worker(config_path, "w1", hold=3.0)):
            coordinator_ready(config_path)
            token_ids = mint_batch(deployment, 6, "broker forgets")
            assert wait_for(lambda: journal_counts(state).get("dispatched", 0) == 6, timeout=60)
            assert wait_for(lambda: generating(tmp_path / "w1.log"), timeout=60), "the worker took no job"
            held = generating(tmp_path / "w1.log")[-1]
            own.kill9()
            own.lose_disk()
            restarted = time.monotonic()
            own.start()
            back = time.monotonic() - restarted
            assert wait_for(lambda: confirmed_count(state) == 6, timeout=90), "jobs out were not sent again"
            recovery = time.monotonic() - restarted
    assert any(e.get("msg") == OUTAGE for e in log_entries(config_path.with_suffix(".log")))
    outcome = settle_report(deployment, ipfs, token_ids, None, images=pool_images(deployment, config_path))
    reliability.append(row("RabbitMQ restarts without its disk", "broker SIGKILLed with 6 jobs out (one held by the "
                           "worker, 3 s a job), its data directory deleted, restarted", 6, outcome, recovery,
                           note=f"broker's own start {back:.1f} s; all 6 sent again, token {held}'s result "
                                "published through the outage"))  # fmt: skip
