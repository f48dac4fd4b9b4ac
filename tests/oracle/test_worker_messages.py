"""What the worker pool says while things are slow: a worker whose broker is down says once what it waits to
publish (no token 0 for an announcement) and counts each retry in a metric; the coordinator says once that a
worker joined, not at every 30 s announcement."""

from __future__ import annotations

import logging

from oracle import observe, wire
from oracle.dispatch import Coordinator
from oracle.messages import WorkResult
from oracle.pool import WorkerPool

FINGERPRINT = "0123456789abcdef"


class FlakyBroker:
    """A producer whose broker refuses `failures` publishes, then takes them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.published: list[dict] = []

    def Producer(self, serializer: str):  # kombu's name
        return self

    def publish(self, body: dict, **_options: object) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        self.published.append(body)


def retries(kind: str) -> float:
    return observe.REGISTRY.get_sample_value("genim_broker_publish_retries_total", {"message": kind}) or 0.0


def test_a_worker_says_once_what_it_waits_to_publish_and_counts_retries(monkeypatch, caplog):
    broker = FlakyBroker(failures=3)
    queue = wire.ResultQueue("amqp://guest:guest@127.0.0.1:1//")
    monkeypatch.setattr(queue, "_open", lambda: broker)
    monkeypatch.setattr(wire.time, "sleep", lambda _seconds: None)
    before = retries("hello")
    caplog.set_level(logging.INFO, logger="genim")
    queue.publish(WorkResult(kind="hello", worker="w1", fingerprint=FINGERPRINT))
    lines = [record.getMessage() for record in caplog.records]
    assert len(broker.published) == 1 and retries("hello") - before == 3
    [waiting] = [line for line in lines if "cannot publish" in line]
    assert "the announcement of worker w1" in waiting and "token 0" not in waiting
    assert any("published after 3 retries" in line for line in lines)


def test_the_coordinator_says_a_worker_joined_once(caplog):
    coordinator = object.__new__(Coordinator)  # only what _collect reads of a hello
    coordinator.fingerprint, coordinator.pool = FINGERPRINT, WorkerPool(FINGERPRINT)
    caplog.set_level(logging.INFO, logger="genim.dispatch")
    for _ in range(3):  # its start, then two 30 s announcements
        coordinator._collect(WorkResult(kind="hello", worker="w1", fingerprint=FINGERPRINT))
    assert [r.getMessage() for r in caplog.records].count("worker w1 joined") == 1
