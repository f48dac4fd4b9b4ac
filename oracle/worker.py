"""A GPU worker (`genim-oracle worker`): one Celery worker process per device that takes jobs, generates,
pins the image and the metadata, and sends back token id, CIDs and digest. It holds no key and never talks
to the chain; what it produces is checked by the coordinator before anything goes on-chain."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from typing import Protocol

from genimnft.ipfs import IpfsClient
from genimnft.metadata import metadata_bytes, raw_cid
from oracle.config import WorkerConfig, fingerprint, settings_summary
from oracle.facts import image_facts
from oracle.generate import Generated
from oracle.messages import MAX_ERROR_CHARS, WorkResult
from oracle.wire import REFUSED_TASK, TASK, JobOrder, ResultQueue, celery_app, jobs_queue

log = logging.getLogger("genim.worker")
ANNOUNCE_EVERY = 30.0


class ImageGenerator(Protocol):
    """What a worker needs of oracle.generate.Generator (test doubles stand in for it)."""

    device: str

    def load(self, tier: int) -> object: ...

    def generate(self, tier: int, prompts: list[str], seeds: list[int], aspect: int = 0) -> list[Generated]: ...


class Worker:
    def __init__(self, config: WorkerConfig, generator: ImageGenerator, name: str) -> None:
        self.config = config
        self.generator = generator
        self.name = name
        self.fingerprint = fingerprint(config.tiers)
        self.settings = settings_summary(config.tiers)
        self.ipfs = IpfsClient(config.ipfs_api, config.ipfs_timeout)
        self.results = ResultQueue(config.broker_url)

    def announce(self, via: ResultQueue | None = None) -> None:
        hello = WorkResult(kind="hello", worker=self.name, fingerprint=self.fingerprint, settings=self.settings)
        (via or self.results).publish(hello, ttl=ANNOUNCE_EVERY * 2)
        log.info("announced", extra={"worker": self.name, "fingerprint": self.fingerprint})

    def keep_announcing(self) -> None:
        """Again every ANNOUNCE_EVERY seconds, on its own connection, for coordinators started later; a worker
        whose fingerprint differs gets no job, so this is how it is seen (and refused) at all."""
        connection = ResultQueue(self.config.broker_url)  # kombu connections are not shared between threads

        def loop() -> None:
            while True:
                time.sleep(ANNOUNCE_EVERY)
                self.announce(connection)

        threading.Thread(target=loop, name="genim-announce", daemon=True).start()

    def run(self, order: JobOrder) -> None:
        """One job attempt; every outcome, failure included, goes back as a message."""
        started = time.monotonic()
        log.info("generating", extra={"token_id": order.token_id, "attempt": order.attempt, "worker": self.name})
        try:
            result = self._produce(order)
        except (RuntimeError, ValueError, OSError) as exc:  # GenerationError, IpfsError, out of memory...
            log.warning("job failed: %s", exc, extra={"token_id": order.token_id})
            error = str(exc).splitlines()[0][:MAX_ERROR_CHARS] if str(exc).strip() else type(exc).__name__
            result = WorkResult(kind="failure", worker=self.name, fingerprint=self.fingerprint,
                                token_id=order.token_id, attempt=order.attempt, error=error)  # fmt: skip
        self.results.publish(result, order.reply_to)
        log.info("job %s", result.kind, extra={"token_id": order.token_id, "seconds": time.monotonic() - started})

    def _produce(self, order: JobOrder) -> WorkResult:
        """Generates, then pins image and metadata, each read back from the node by the CID it answered and
        compared byte for byte, as the daemon does: a node that answers a stale or foreign CID fails the job
        here. The image's sha256 goes with the result, so the coordinator can check the image it fetches by the
        metadata's CID is the one generated."""
        started = time.monotonic()
        [image] = self.generator.generate(order.tier, [order.prompt], [order.seed], order.aspect)
        image_cid = self.ipfs.pin(image.png, f"genimnft-{order.token_id}.png")
        facts = image_facts(
            self.config.tiers[order.tier], token_id=order.token_id, prompt=order.prompt, tier=order.tier,
            aspect=order.aspect, seed=order.seed, png=image.png, generated_at=int(time.time()), image_cid=image_cid,
        )  # fmt: skip
        data = metadata_bytes(facts)
        metadata_cid = self.ipfs.pin(data, f"genimnft-{order.token_id}.json", expected_cid=raw_cid(data))
        return WorkResult(kind="result", worker=self.name, fingerprint=self.fingerprint, token_id=order.token_id,
                          attempt=order.attempt, image_cid=image_cid, metadata_cid=metadata_cid,
                          digest=hashlib.sha256(data).hexdigest(), image_sha256=hashlib.sha256(image.png).hexdigest(),
                          seconds=time.monotonic() - started)  # fmt: skip


def default_name(device: str) -> str:
    return f"genim-{device.replace(':', '')}@{socket.gethostname()}"


def run_worker(config: WorkerConfig, generator: ImageGenerator, name: str, loglevel: str = "WARNING") -> None:
    """Loads every tier, announces itself, then serves jobs until stopped (one at a time: `-P solo`)."""
    for tier in sorted(config.tiers):
        generator.load(tier)
    worker = Worker(config, generator, name)
    app = celery_app(config.broker_url)

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def generate(order: dict) -> None:
        worker.run(JobOrder(**order))

    @app.task(name=REFUSED_TASK, ignore_result=True)
    def refused(why: str) -> None:  # a coordinator's answer to this worker's announcement
        log.warning("refused by a coordinator: %s", why[:2000], extra={"worker": worker.name})

    worker.announce()
    worker.keep_announcing()
    logging.getLogger("genim").setLevel(logging.INFO)  # Celery sets the root logger to `loglevel`, for its own lines
    app.worker_main(["worker", "-P", "solo", "--concurrency", "1", "--prefetch-multiplier", "1",
                     "-Q", jobs_queue(worker.fingerprint), "-n", name, "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-l", loglevel])  # fmt: skip
