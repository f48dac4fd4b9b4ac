"""An unreachable IPFS node is no longer invisible: /health says degraded with the reason, `genim-oracle status`
lists it under notices while it lasts, and both clear when the node is back. /health and /status answer apart."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx

from genim_devnet.localnet import free_port, ipfs_node
from oracle import observe
from oracle.journal import JobState
from tests.services import ROOT, account_key, make_daemon, oracle_config, write_config


def step_until(daemon, done, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, daemon.status()
        daemon.step()
        time.sleep(0.1)


def status_notices(config_path) -> dict:
    shown = subprocess.run([sys.executable, "-m", "oracle.cli", "status", "--config", str(config_path)],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    return json.loads(shown.stdout)["notices"]


def test_ipfs_down_is_degraded_health_and_a_status_notice(deployment, tiny_model, tmp_path):
    with ipfs_node() as ipfs:
        config = oracle_config(deployment, ipfs, tiny_model, tmp_path / "state")
        config_path = write_config(config, tmp_path / "oracle.toml")
        daemon = make_daemon(config)
        server = observe.serve("127.0.0.1", free_port(), daemon.status, stale_after=30)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            ipfs.stop()
            deployment.mint(account_key(2), "a fox while IPFS is down", 0)
            step_until(daemon, lambda: "ipfs" in daemon.status()["unreachable"])
            assert daemon.journal.counts()[JobState.GENERATED.value] == 1  # waits to be pinned
            health = httpx.get(f"{base}/health")
            assert health.status_code == 503 and health.json()["status"] == "degraded"
            assert health.json()["reasons"][0].startswith("ipfs unreachable: ")
            status = httpx.get(f"{base}/status").json()
            assert status != health.json() and status["health"] == health.json() and "jobs" in status
            notice = status_notices(config_path)["unreachable_ipfs"]
            assert notice["stages"] == ["pin"] and notice["reason"]

            ipfs.start()
            step_until(daemon, lambda: daemon.journal.counts()[JobState.CONFIRMED.value] == 1)
            assert httpx.get(f"{base}/health").json() == {"healthy": True, "status": "ok", "reasons": []}
            assert "unreachable_ipfs" not in status_notices(config_path)
        finally:
            server.shutdown()
            daemon.journal.close()
