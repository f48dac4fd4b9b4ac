"""Long work shows progress: jobs in flight read `generating` in status, each denoising step reaches the log
(throttled) and a metric, and /health says stalled once a generation overruns its tier's expected time."""

from __future__ import annotations

import json
import logging
import time

import httpx

from genim_devnet.localnet import free_port
from oracle import observe
from oracle.config import TierSettings
from oracle.generate import Generator
from oracle.progress import PROGRESS_FILE, read_progress
from tests.services import account_key, make_daemon, oracle_config, wait_for


class SlowPipeline:
    """Test double around the real pipeline: each call waits `delay` seconds first, as a big tier would."""

    def __init__(self, real, delay: float) -> None:
        self.real, self.delay = real, delay

    def __call__(self, **kwargs):
        time.sleep(self.delay)
        return self.real(**kwargs)


def test_step_callback_sees_every_step(tiny_model):
    tiers = {0: TierSettings(model=str(tiny_model), width=64, height=64, steps=3, size_step=16)}
    steps: list[int] = []
    Generator(tiers).generate(0, ["a red fox"], [1], on_step=steps.append)
    assert steps == [1, 2, 3]


def test_generating_shows_in_status_and_health_says_stalled(deployment, ipfs, tiny_model, tmp_path, caplog):
    config = oracle_config(deployment, ipfs, tiny_model, tmp_path, stall_factor=2, progress_log_interval=0.5)
    tiers = {t: s.model_copy(update={"steps": 3, "expected_seconds": 0.2}) for t, s in config.tiers.items()}
    config = config.model_copy(update={"tiers": tiers})
    daemon = make_daemon(config)
    real_load = daemon.generator.load
    daemon.generator.load = lambda tier: SlowPipeline(real_load(tier), delay=2.0)
    token_id = deployment.mint(account_key(2), "a slow one", 0)
    server = observe.serve("127.0.0.1", free_port(), daemon.status, stale_after=30)
    health = f"http://127.0.0.1:{server.server_address[1]}/health"
    caplog.set_level(logging.INFO, logger="genim.progress")
    try:
        assert wait_for(lambda: (daemon.step(), (tmp_path / PROGRESS_FILE).exists())[1], timeout=30)
        jobs = daemon.journal.counts()
        shown = read_progress(tmp_path, jobs)
        assert shown["generating"]["token_ids"] == [token_id] and jobs["generating"] == 1 and jobs["seen"] == 0
        time.sleep(0.6)  # past stall_factor x expected_seconds x 1 image
        daemon.step()
        reply = httpx.get(health)
        assert reply.status_code == 503 and reply.json()["status"] == "stalled", reply.text
        assert daemon.status()["generating"]["token_ids"] == [token_id]
        assert wait_for(lambda: (daemon.step(), daemon.journal.counts()["confirmed"] == 1)[1], timeout=60)
        assert httpx.get(health).status_code == 200
    finally:
        server.shutdown()
    assert not (tmp_path / PROGRESS_FILE).exists()
    lines = [r for r in caplog.records if r.getMessage() == "generation progress"]
    assert 1 <= len(lines) <= 2, "throttled: the three quick steps give one line, not three"
    assert json.loads(json.dumps(lines[0].__dict__["token_ids"])) == [token_id]
    sample = observe.REGISTRY.get_sample_value("genim_generation_steps_total", {"tier": "0"})
    assert sample is not None and sample >= 3
