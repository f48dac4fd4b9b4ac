"""The wire between the coordinator and the GPU workers, on one RabbitMQ broker.

Jobs go out as Celery tasks on a queue named by the model fingerprint (a worker with other settings listens
elsewhere and never takes them): late acks, requeued if the worker is lost, prefetch 1, publisher confirms, a
stable task id per job attempt, an expiry before the request's deadline. Results come back on the durable
queue of the coordinator's contract (named in each job). A worker declares that queue itself before it
publishes, publishes persistent, mandatory and confirmed, and retries until the broker confirms: a broker that
restarted empty gets the queue back from the first publish, and a result is never routed into nothing. The
coordinator takes results one by one as raw messages (never decoded by kombu: oracle/messages.py checks them)
and acknowledges each only after the journal has it, so a coordinator killed with kill -9 loses none. A
starting worker announces itself on a fanout exchange bound to every results queue.

Every sign that the broker went away (a publish or a take that failed, a connection Celery repaired by itself
while publishing) is reported to the coordinator's `on_outage`: a broker that lost its disk lost every job
queued, so the coordinator sends all its jobs out again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import kombu
from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError

from oracle import observe
from oracle.messages import WorkResult

log = logging.getLogger("genim.wire")
TASK = "genim.generate"
REFUSED_TASK = "genim.refused"  # a coordinator to a refused worker: why, in one line
REFUSAL_TTL = 120.0  # seconds a refusal note waits for its worker
HELLO = kombu.Exchange("genim.hello", type="fanout", durable=True)
BROKER_ERRORS = (KombuError, AMQPError, OSError)
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
T = TypeVar("T")


def _what(result: WorkResult) -> str:
    """What a worker is waiting to publish, in words."""
    if result.kind == "hello":
        return f"the announcement of worker {result.worker}"
    return f"the {'result' if result.kind == 'result' else 'failure report'} of token {result.token_id}"


class BrokerUnavailable(ConnectionError):
    """The broker does not answer; the daemon waits it out like an RPC or IPFS outage."""


def jobs_queue(fingerprint: str) -> str:
    return f"genim.jobs.{fingerprint}"


def results_queue(chain_id: int, contract: str) -> str:
    return f"genim.results.{chain_id}.{contract.lower()}"


def _results(name: str) -> kombu.Queue:
    """A results queue as both sides declare it (the same arguments, or the broker refuses the second)."""
    return kombu.Queue(name, exchange=HELLO, durable=True)


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
        task_publish_retry_policy=PUBLISH_RETRY,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def task_id(chain_id: int, contract: str, order: JobOrder) -> str:
    return f"{chain_id}:{contract}:{order.token_id}:{order.attempt}"


class JobSender:
    """The coordinator's side of the jobs queue (durable, declared by each publish after a reconnect)."""

    def __init__(self, broker_url: str, fingerprint: str, on_outage: Callable[[], None]) -> None:
        self._app = celery_app(broker_url)
        self._queue = jobs_queue(fingerprint)
        self._on_outage = on_outage
        self._confirmed = 0  # jobs the broker confirmed since the last outage was reported

    def send(self, order: JobOrder, task: str, expires_at: float) -> None:
        policy = {**PUBLISH_RETRY, "errback": self._repairing}
        try:
            self._app.send_task(TASK, args=[asdict(order)], task_id=task, queue=self._queue, retry_policy=policy,
                                expires=datetime.fromtimestamp(expires_at, UTC))  # fmt: skip
        except BROKER_ERRORS as exc:
            self._confirmed = 0
            self._on_outage()
            raise BrokerUnavailable(f"broker: cannot publish job {task}: {exc}") from exc
        self._confirmed += 1

    def tell_refused(self, worker_fingerprint: str, why: str) -> None:
        """Tells a refused worker why, on the one queue it reads (its jobs queue); the note expires unread if no
        such worker is left. Best effort: the coordinator's own log says it too."""
        expires = datetime.fromtimestamp(time.time() + REFUSAL_TTL, UTC)
        try:
            self._app.send_task(REFUSED_TASK, args=[why], queue=jobs_queue(worker_fingerprint), expires=expires,
                                retry=False)  # fmt: skip
        except BROKER_ERRORS as exc:
            log.info("broker: could not tell the refused worker why: %s", exc)

    def resending_all(self) -> None:
        """The coordinator is sending every job out again: a reconnect from here on loses only what follows."""
        self._confirmed = 0

    def _repairing(self, exc: BaseException, _interval: float) -> None:
        """Kombu's errback while Celery repairs the connection under a publish: the jobs confirmed on the old
        connection may be gone with the broker."""
        log.warning("broker: connection lost while publishing, reconnecting: %s", exc)
        if self._confirmed:
            self._confirmed = 0
            self._on_outage()


@dataclass(frozen=True)
class Delivery:
    """One raw message taken from a results queue, to be acked, rejected or requeued by the taker."""

    body: bytes
    content_type: str | None
    content_encoding: str | None
    _tag: int
    _queue: ResultQueue
    _connection: kombu.Connection  # a delivery tag means something only on the connection it came on

    def ack(self) -> None:
        self._queue._settle(self._connection, lambda channel: channel.basic_ack(self._tag))

    def reject(self) -> None:
        """Dropped for good: not requeued, so one bad message cannot block the queue."""
        self._queue._settle(self._connection, lambda channel: channel.basic_reject(self._tag, requeue=False))

    def requeue(self) -> None:
        self._queue._settle(self._connection, lambda channel: channel.basic_reject(self._tag, requeue=True))


class ResultQueue:
    """A coordinator's durable results queue (`name`), or a worker's way to any of them (no name); one
    connection, re-opened after a broker outage."""

    def __init__(self, broker_url: str, name: str | None = None, on_outage: Callable[[], None] | None = None) -> None:
        self._url = broker_url
        self.name = name or ""
        self._on_outage = on_outage or (lambda: None)
        self._connection: kombu.Connection | None = None
        self._declared: set[str] = set()  # results queues declared on this connection

    def _open(self) -> kombu.Connection:
        if self._connection is None:
            connection = kombu.Connection(self._url, transport_options={"confirm_publish": True}, connect_timeout=5)
            connection.ensure_connection(max_retries=1)
            self._connection, self._declared = connection, set()
        if self.name:
            self._declare(self.name)
        return self._connection

    def _declare(self, name: str) -> None:
        if name not in self._declared:
            assert self._connection is not None
            _results(name)(self._connection.default_channel).declare()
            self._declared.add(name)

    def publish(self, result: WorkResult, queue: str | None = None, ttl: float | None = None) -> None:
        """A worker's publish, to one results queue or (no queue) to all: persistent, mandatory, confirmed,
        retried until the broker takes it (the worker keeps its job, unacknowledged, meanwhile)."""
        target = {"routing_key": queue} if queue else {"exchange": HELLO, "routing_key": "", "declare": [HELLO]}
        retries = 0
        while True:
            try:
                connection = self._open()
                if queue:
                    self._declare(queue)
                producer = connection.Producer(serializer="json")
                producer.publish(result.model_dump(mode="json"), delivery_mode=2, expiration=ttl,
                                 mandatory=bool(queue), **target)  # fmt: skip
                if retries:
                    log.info("broker: %s published after %d retries", _what(result), retries)
                return
            except BROKER_ERRORS as exc:
                if not retries:  # said once; the metric counts every retry
                    log.warning("broker: cannot publish %s; retrying every second until the broker takes it: %s",
                                _what(result), exc)  # fmt: skip
                retries += 1
                observe.PUBLISH_RETRIES.labels(message=result.kind).inc()
                self.close()
                time.sleep(1.0)

    def take(self, limit: int) -> Iterator[Delivery]:
        """The coordinator's take: up to `limit` raw messages, each to be settled by the caller."""
        assert self.name, "only a coordinator takes results"
        for _ in range(limit):
            connection = self._guarded(self._open)
            raw = self._guarded(lambda c=connection: c.default_channel.basic_get(queue=self.name, no_ack=False))
            if raw is None:
                return
            body = raw.body.encode() if isinstance(raw.body, str) else bytes(raw.body)
            properties = raw.properties
            yield Delivery(body, properties.get("content_type"), properties.get("content_encoding"),
                           raw.delivery_tag, self, connection)  # fmt: skip

    def check(self) -> None:
        self._guarded(self._open, "does not answer: ")

    def _settle(self, connection: kombu.Connection, settle: Callable[[Any], object]) -> None:
        if connection is not self._connection:  # the broker requeued it when that connection was lost
            raise BrokerUnavailable("broker: the connection a result came on is gone; it is delivered again")
        self._guarded(lambda: settle(connection.default_channel))

    def _guarded(self, call: Callable[[], T], what: str = "") -> T:
        try:
            return call()
        except BROKER_ERRORS as exc:
            self.close()
            self._on_outage()
            raise BrokerUnavailable(f"broker {self._url.rsplit('@', 1)[-1]} {what}{exc}") from exc

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(*BROKER_ERRORS):
                self._connection.release()
            self._connection = None
