"""The reliability report: each fault test adds a row; the session writes bench/results/reliability.json."""

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
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(rows, indent=2) + "\n")
