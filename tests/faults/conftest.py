"""The reliability report and the fault suite's shared broker.

Each fault test adds a row; with GENIM_RELIABILITY_REPORT=1 the session merges them into
bench/results/reliability.json by fault name, so a partial run updates its rows and keeps the others. Without
it (as in `make test`) nothing tracked is rewritten.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from genim_devnet.broker import available, rabbitmq

REPORT = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"
RECORD = "GENIM_RELIABILITY_REPORT"


@pytest.fixture(scope="session")
def reliability():
    rows: list[dict] = []
    yield rows
    if rows and os.environ.get(RECORD) == "1":
        merged = {row["fault"]: row for row in (json.loads(REPORT.read_text()) if REPORT.exists() else [])}
        merged.update({row["fault"]: row for row in rows})
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(list(merged.values()), indent=2) + "\n")


@pytest.fixture(scope="session")
def broker():
    """One RabbitMQ node for the worker-pool cases that do not kill theirs (each purges its queues after)."""
    if not available():
        pytest.skip("rabbitmq-server is not installed (make setup)")
    with rabbitmq() as node:
        yield node
