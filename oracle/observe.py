"""What the daemon shows: structured log lines, Prometheus metrics and a health endpoint on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()
JOBS = Gauge("genim_jobs", "Jobs in the journal by state", ["state"], registry=REGISTRY)
GENERATION_SECONDS = Histogram(
    "genim_generation_seconds", "Seconds per batched generation call", ["tier"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)  # fmt: skip
PIN_SECONDS = Histogram("genim_pin_seconds", "Seconds per IPFS add", ["kind"], registry=REGISTRY)
GAS_USED = Counter("genim_gas_used_total", "Gas used by the oracle's transactions", registry=REGISTRY)
TXS = Counter("genim_transactions_total", "Transactions by outcome", ["outcome"], registry=REGISTRY)
EARNINGS = Counter("genim_earnings_total", "Escrow of the images this oracle set, before fee, in the asset's base "
                   "units (ETH: wei; USDC: 6 decimals)", ["asset"], registry=REGISTRY)  # fmt: skip
BALANCE = Gauge("genim_wallet_balance_wei", "The oracle account's balance", registry=REGISTRY)
REVERTED = Counter("genim_reverted_transactions_total", "Oracle transactions mined reverted", registry=REGISTRY)
FUNDS_NEEDED = Gauge("genim_funds_needed_wei", "Wei the next transaction needs while the balance is short (else 0)",
                     registry=REGISTRY)  # fmt: skip
LOW_BALANCE_THRESHOLD = Gauge("genim_low_balance_threshold_wei", "low_balance_batches full batches of gas, in wei",
                              registry=REGISTRY)  # fmt: skip
BALANCE_LOW = Gauge("genim_balance_low", "1 while the balance is under the low-balance threshold", registry=REGISTRY)
CURSOR = Gauge("genim_cursor_block", "Next block the follower will read", registry=REGISTRY)
GENERATION_STEP = Gauge("genim_generation_step", "Denoising step of the generation in flight", ["tier"],
                        registry=REGISTRY)  # fmt: skip
GENERATION_STEPS = Counter("genim_generation_steps_total", "Denoising steps run", ["tier"], registry=REGISTRY)
LAST_TICK = Gauge("genim_last_tick_timestamp", "Unix time of the last completed loop", registry=REGISTRY)
# GPU workers (workers = "celery")
WORKERS_SEEN = Gauge("genim_workers_seen", "Workers heard from with this coordinator's fingerprint", registry=REGISTRY)
JOBS_OUT = Gauge("genim_jobs_out", "Jobs dispatched to the workers and not yet answered", registry=REGISTRY)
WORKER_IMAGES = Counter("genim_worker_images_total", "Verified images by worker", ["worker"], registry=REGISTRY)
WORKER_FAILURES = Counter("genim_worker_failures_total", "Failed or unverifiable results by worker", ["worker"],
                          registry=REGISTRY)  # fmt: skip
WORKER_RATE = Gauge("genim_worker_images_per_second", "Verified images per second over the last minute",
                    ["worker"], registry=REGISTRY)  # fmt: skip
RESULTS_REFUSED = Counter("genim_results_refused_total", "Worker announcements and results refused", ["reason"],
                          registry=REGISTRY)  # fmt: skip
PUBLISH_RETRIES = Counter("genim_broker_publish_retries_total", "A worker's publishes retried while the broker did "
                          "not take them, by message kind", ["message"], registry=REGISTRY)  # fmt: skip
RESULTS_DROPPED = Counter("genim_results_dropped_total", "Results dropped: duplicate, or after expiry", ["reason"],
                          registry=REGISTRY)  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra` fields (token_id, state...) become keys."""

    RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in self.RESERVED})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "urllib3", "web3", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def health(status: dict, stale_after: float) -> dict:
    """`ok`; `degraded` while a service is unreachable (the jobs that need it wait); `stalled` (a generation past
    its expected time) or `stale` (the loop has not turned for `stale_after` s): unhealthy. Each with its reasons."""
    reasons = [
        f"{service} unreachable: {outage['reason']}" for service, outage in status.get("unreachable", {}).items()
    ]
    state = "degraded" if reasons else "ok"
    if status.get("stalled", False):
        state, reasons = "stalled", ["a generation runs past stall_factor times its expected time", *reasons]
    if time.time() - status.get("last_tick", 0) >= stale_after:
        state, reasons = "stale", [f"the loop has not completed a pass for {stale_after:.0f} s", *reasons]
    return {"healthy": state == "ok", "status": state, "reasons": reasons}


def serve(host: str, port: int, status: Callable[[], dict], stale_after: float) -> ThreadingHTTPServer:
    """Serves /metrics (Prometheus), /health (its verdict and reasons: 200 when ok, 503 when degraded, stalled or
    stale) and /status (the whole status, with that verdict)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(REGISTRY), "text/plain; version=0.0.4")
            elif self.path == "/health":
                verdict = health(status(), stale_after)
                self._reply(200 if verdict["healthy"] else 503, json.dumps(verdict).encode(), "application/json")
            elif self.path == "/status":
                body = status()
                self._reply(200, json.dumps({**body, "health": health(body, stale_after)}).encode(), "application/json")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="genim-http", daemon=True).start()
    return server
