"""The reliability report: each fault test adds a row; the session merges them into
bench/results/reliability.json by fault name, so a partial run updates its rows and keeps the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"


@pytest.fixture(scope="session")
def reliability():
    rows: list[dict] = []
    yield rows
    if rows:
        merged = {row["fault"]: row for row in (json.loads(REPORT.read_text()) if REPORT.exists() else [])}
        merged.update({row["fault"]: row for row in rows})
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(list(merged.values()), indent=2) + "\n")
