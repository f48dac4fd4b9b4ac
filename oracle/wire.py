"""The wire between the coordinator and the GPU workers, on one RabbitMQ broker.

Jobs go out as Celery tasks on a queue named by the model fingerprint (a worker with other settings listens
elsewhere and never takes them): late acks, requeued if the worker is lost, prefetch 1, publisher confirms, a
stable task id per job attempt, an expiry before the request's deadline. Results come back on the durable
queue of the coordinator's contract (named in each job), which workers publish to with confirms and the
coordinator takes one by one, acknowledging each only after the journal has it, so a coordinator killed with
kill -9 loses none. A starting worker announces itself on a fanout exchange bound to every results queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import kombu
from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError

log = logging.getLogger("genim.wire")
TASK = "genim.generate"
HELLO = kombu.Exchange("genim.hello", type="fanout", durable=True)
BROKER_ERRORS = (KombuError, AMQPError, OSError)


class BrokerUnavailable(ConnectionError):
    """The broker does not answer; the daemon waits it out like an RPC or IPFS outage."""


def jobs_queue(fingerprint: str) -> str:
    return f"genim.jobs.{fingerprint}"


def results_queue(chain_id: int, contract: str) -> str:
    return f"genim.results.{chain_id}.{contract.lower()}"


@dataclass(frozen=True)
class JobOrder:
    """One job attempt, as a worker needs it: nothing about the chain but the seed."""

    token_id: int
    attempt: int
    tier: int
    aspect: int
    prompt: str
    seed: int
    fingerprint: str
    reply_to: str  # the coordinator's results queue


@dataclass(frozen=True)
class WorkResult:
    """What a worker sends back: `hello` when it starts, then a `result` or a `failure` per job."""

    kind: Literal["hello", "result", "failure"]
    worker: str
    fingerprint: str
    token_id: int = 0
    attempt: int = 0
    image_cid: str = ""
    metadata_cid: str = ""
    digest: str = ""  # sha256 of the metadata bytes, hex
    seconds: float = 0.0
    error: str = ""


def celery_app(broker_url: str) -> Any:
    from celery import Celery

    app = Celery("genim", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"confirm_publish": True},
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def task_id(chain_id: int, contract: str, order: JobOrder) -> str:
    return f"{chain_id}:{contract}:{order.token_id}:{order.attempt}"


class JobSender:
    """The coordinator's side of the jobs queue."""

    def __init__(self, broker_url: str, fingerprint: str) -> None:
        self._app = celery_app(broker_url)
        self._queue = jobs_queue(fingerprint)

    def send(self, order: JobOrder, task: str, expires_at: float) -> None:
        try:
            self._app.send_task(TASK, args=[asdict(order)], task_id=task, queue=self._queue,
                                expires=datetime.fromtimestamp(expires_at, UTC))  # fmt: skip
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"broker: cannot publish job {task}: {exc}") from exc


class ResultQueue:
    """A coordinator's durable results queue (`name`), or a worker's way to any of them (no name); one
    connection, re-opened after a broker outage."""

    def __init__(self, broker_url: str, name: str | None = None) -> None:
        self._url = broker_url
        self.name = name or ""
        self._connection: kombu.Connection | None = None
        self._queue = kombu.Queue(name, exchange=HELLO, durable=True) if name else None

    def _open(self) -> kombu.Connection:
        if self._connection is None:
            connection = kombu.Connection(self._url, transport_options={"confirm_publish": True}, connect_timeout=5)
            connection.ensure_connection(max_retries=1)
            if self._queue is not None:
                self._queue(connection.default_channel).declare()
            self._connection = connection
        return self._connection

    def publish(self, result: WorkResult, queue: str | None = None, ttl: float | None = None) -> None:
        """A worker's publish, to one results queue or (no queue) to all: persistent, confirmed, retried until
        the broker takes it."""
        target = {"routing_key": queue} if queue else {"exchange": HELLO, "routing_key": "", "declare": [HELLO]}
        while True:
            try:
                producer = self._open().Producer(serializer="json")
                producer.publish(asdict(result), delivery_mode=2, expiration=ttl, **target)
                return
            except BROKER_ERRORS as exc:
                log.warning("broker: cannot publish the result of token %d, retrying: %s", result.token_id, exc)
                self.close()
                time.sleep(1.0)

    def take(self, limit: int) -> Iterator[tuple[WorkResult, kombu.Message]]:
        """The coordinator's take: up to `limit` results, each to be acked (or requeued) by the caller."""
        try:
            channel = self._open().default_channel
            assert self._queue is not None, "only a coordinator takes results"
            for _ in range(limit):
                message = self._queue(channel).get(no_ack=False)
                if message is None:
                    return
                try:
                    result = _result(message)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("malformed result dropped: %s", exc)
                    message.ack()
                    continue
                yield result, message
        except BROKER_ERRORS as exc:
            self.close()
            raise BrokerUnavailable(f"broker {self._url.rsplit('@', 1)[-1]}: {exc}") from exc

    def check(self) -> None:
        try:
            self._open()
        except BROKER_ERRORS as exc:
            self.close()
            raise BrokerUnavailable(f"broker {self._url.rsplit('@', 1)[-1]} does not answer: {exc}") from exc

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(*BROKER_ERRORS):
                self._connection.release()
            self._connection = None


def _result(message: kombu.Message) -> WorkResult:
    body = message.payload if isinstance(message.payload, dict) else json.loads(message.body)
    fields = {name: body[name] for name in WorkResult.__dataclass_fields__ if name in body}
    return WorkResult(**fields)
