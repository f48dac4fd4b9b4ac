"""Config files read the same way by both programs (genimnft/settings.py): a misspelt key is an error that names
the nearest real one, and relative paths in a file are relative to that file, wherever the program runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genim_mcp.config import load_config as load_front_config
from genimnft.settings import ConfigError
from oracle.config import WorkerConfig, load_config
from tests.services import ROOT

ORACLE = 'rpc_uri = "http://127.0.0.1:1"\naccount = "TEST::1"\ndeployment_file = "deployments/here.json"\n'
FRONT = 'rpc_uri = "http://127.0.0.1:1"\ndeployment_file = "deployments/here.json"\nmode = "hosted"\n'


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("polll_interval = 0.5", "unknown key `polll_interval` (did you mean `poll_interval`?)"),
        ("max_fee_per_gass = 1", "unknown key `max_fee_per_gass` (did you mean `max_fee_per_gas`?)"),
        ("[tiers.0]\nstpes = 2", "unknown key `tiers.0.stpes` (did you mean `tiers.0.steps`?)"),
        ("[tiers.2.upscale]\nmodel = 'u'\nfactr = 2", "unknown key `tiers.2.upscale.factr` (did you mean"),
    ],
)
def test_daemon_refuses_a_misspelt_key(tmp_path, extra, named):
    path = tmp_path / "oracle.toml"
    path.write_text(ORACLE + extra + "\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert named in str(refused.value) and str(path) in str(refused.value)


def test_front_refuses_a_misspelt_key(tmp_path):
    path = tmp_path / "genim-mcp.toml"
    path.write_text(FRONT + "price_margin_bp = 100\n")
    with pytest.raises(ConfigError, match=r"unknown key `price_margin_bp` \(did you mean `price_margin_bps`\?\)"):
        load_front_config(path)


def test_worker_accepts_its_coordinators_file_but_not_a_typo(tmp_path):
    path = tmp_path / "oracle.toml"
    path.write_text(ORACLE + "poll_interval = 0.5\n")
    assert load_config(path, model=WorkerConfig).ipfs_api
    path.write_text(ORACLE + "brokr_url = 'amqp://x'\n")
    with pytest.raises(ConfigError, match="did you mean `broker_url`"):
        load_config(path, model=WorkerConfig)


def test_relative_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    configs = tmp_path / "etc"
    (configs / "models" / "tiny").mkdir(parents=True)
    (configs / "oracle.toml").write_text(ORACLE + 'state_dir = "state"\n[tiers.0]\nmodel = "models/tiny"\n')
    (configs / "front.toml").write_text(FRONT + 'state_dir = "mcp-state"\n')
    monkeypatch.chdir(tmp_path)  # somewhere else, as an MCP client starts its server
    oracle = load_config(Path("etc/oracle.toml"))
    front = load_front_config(Path("etc/front.toml"))
    assert oracle.deployment_file == front.deployment_file == configs / "deployments" / "here.json"
    assert oracle.state_dir == configs / "state" and front.state_dir == configs / "mcp-state"
    assert oracle.tiers[0].model == str(configs / "models" / "tiny")


def test_both_commands_say_it_in_one_line(tmp_path):
    oracle, front = tmp_path / "oracle.toml", tmp_path / "front.toml"
    oracle.write_text(ORACLE + "polll_interval = 0.5\n")
    front.write_text(FRONT + "polll_interval = 0.5\n")
    for command in (
        ["oracle.cli", "status", "--config", str(oracle)],
        ["genim_mcp.cli", "hosted", "--config", str(front)],
    ):
        done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode != 0
        assert done.stderr.strip().count("\n") == 0, done.stderr
        assert "did you mean `poll_interval`?" in done.stderr
