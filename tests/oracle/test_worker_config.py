"""The worker's side of the configuration, without services: what it reads, and the fingerprint."""

from __future__ import annotations

import shutil
from pathlib import Path

from oracle.config import (
    OracleConfig,
    TierSettings,
    WorkerConfig,
    fingerprint,
    load_config,
    settings_differences,
    settings_summary,
)


def test_a_worker_reads_the_coordinators_file_without_key_or_rpc(tmp_path):
    path = tmp_path / "oracle.toml"
    path.write_text('rpc_uri = "http://x"\ncontract = "0x00"\naccount = "alice"\nworkers = "celery"\n'
                    'broker_url = "amqp://b//"\n[tiers.0]\nmodel = "m"\nsteps = 3\n')  # fmt: skip
    worker = load_config(path, model=WorkerConfig)
    assert worker.broker_url == "amqp://b//" and worker.tiers[0].steps == 3
    assert not hasattr(worker, "account") and not hasattr(worker, "rpc_uri")
    coordinator = load_config(path, model=OracleConfig)
    assert coordinator.workers == "celery"
    assert fingerprint(coordinator.tiers) == fingerprint(worker.tiers)


def test_fingerprint_follows_settings_and_model_files_not_the_path(tmp_path):
    model = tmp_path / "a" / "tiny"
    model.mkdir(parents=True)
    (model / "unet.safetensors").write_bytes(b"x" * 10)
    moved = tmp_path / "b" / "tiny"
    shutil.copytree(model, moved)
    tiers = {0: TierSettings(model=str(model))}
    assert fingerprint(tiers) == fingerprint({0: TierSettings(model=str(moved))})
    assert fingerprint(tiers) != fingerprint({0: TierSettings(model=str(model), steps=2)})
    (moved / "unet.safetensors").write_bytes(b"y" * 11)
    assert fingerprint(tiers) != fingerprint({0: TierSettings(model=str(moved))})


def test_shipped_worker_configs_match_their_coordinators():
    """Used as shipped, a worker is accepted: deploy/worker.toml has oracle.example.toml's tiers, and
    worker.local.toml oracle.local.toml's (the fingerprints agree, so the jobs queue is the same)."""
    root = Path(__file__).resolve().parents[2]
    for worker_file, coordinator_file in (("deploy/worker.toml", "oracle.example.toml"),
                                          ("worker.local.toml", "oracle.local.toml")):  # fmt: skip
        worker = load_config(root / worker_file, model=WorkerConfig)
        coordinator = load_config(root / coordinator_file, model=OracleConfig)
        assert settings_differences(settings_summary(coordinator.tiers), settings_summary(worker.tiers)) == []
        assert fingerprint(worker.tiers) == fingerprint(coordinator.tiers), worker_file
