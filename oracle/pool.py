"""The GPU workers the coordinator has heard from: what /status and /metrics show about them."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from oracle import observe

RATE_WINDOW = 60.0  # seconds of history behind images/s


@dataclass
class WorkerStats:
    fingerprint: str
    first_seen: float
    last_seen: float
    images: int = 0
    failures: int = 0
    refused: int = 0
    recent: deque[float] = field(default_factory=deque)

    def images_per_s(self, now: float) -> float:
        while self.recent and now - self.recent[0] > RATE_WINDOW:
            self.recent.popleft()
        span = min(RATE_WINDOW, max(now - self.first_seen, 1.0))
        return len(self.recent) / span


class WorkerPool:
    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self._workers: dict[str, WorkerStats] = {}

    def heard(self, worker: str, fingerprint: str) -> tuple[WorkerStats, bool]:
        """The worker's stats, and whether this is the first time it is heard with this fingerprint."""
        now = time.time()
        stats = self._workers.get(worker)
        first = stats is None or stats.fingerprint != fingerprint
        if stats is None or first:
            stats = self._workers[worker] = WorkerStats(fingerprint, now, now)
        stats.last_seen = now
        return stats, first

    def delivered(self, worker: str) -> None:
        stats = self._workers[worker]
        stats.images += 1
        stats.recent.append(time.time())
        observe.WORKER_IMAGES.labels(worker=worker).inc()

    def failed(self, worker: str) -> None:
        self._workers[worker].failures += 1
        observe.WORKER_FAILURES.labels(worker=worker).inc()

    def refused(self, worker: str) -> None:
        self._workers[worker].refused += 1

    def snapshot(self) -> dict[str, dict]:
        now = time.time()
        report = {}
        for name, stats in sorted(self._workers.items()):
            rate = stats.images_per_s(now)
            observe.WORKER_RATE.labels(worker=name).set(rate)
            report[name] = {
                "accepted": stats.fingerprint == self.fingerprint,
                "fingerprint": stats.fingerprint,
                "images": stats.images,
                "failures": stats.failures,
                "refused": stats.refused,
                "images_per_s": round(rate, 3),
                "last_seen_s_ago": round(now - stats.last_seen, 1),
            }
        observe.WORKERS_SEEN.set(sum(1 for w in report.values() if w["accepted"]))
        return report
