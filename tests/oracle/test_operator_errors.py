"""What an operator sees when something is wrong: one `genim-oracle:` line, a non-zero exit, no traceback.

The storage faults are real: a corrupt journal file, a full filesystem and a read-only one (small tmpfs
mounts; skipped where this user may not mount).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from oracle.config import OracleConfig
from oracle.journal import Journal
from tests.services import ROOT, account_key, write_config

ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def genim_oracle(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oracle.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, timeout=60)  # fmt: skip


def one_line(result: subprocess.CompletedProcess) -> str:
    """The operator's message: exactly one `genim-oracle:` line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("genim-oracle: "), result.stderr
    return lines[0]


@pytest.fixture()
def dead_rpc() -> Iterator[str]:
    """A port that accepts connections and never answers: the slowest RPC there is."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def config_file(tmp_path: Path, state_dir: Path, rpc_uri: str = "http://127.0.0.1:9", **values: object) -> Path:
    config = OracleConfig.model_validate({"network": "optimism:local:foundry", "rpc_uri": rpc_uri,
                                          "contract": ADDRESS, "account": "TEST::1", "state_dir": state_dir,
                                          "metrics_port": 0, **values})  # fmt: skip
    return write_config(config, tmp_path / "oracle.toml")


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_corrupt_journal_says_how_to_rebuild(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.sqlite3").write_bytes(b"this is not an SQLite file, it was torn by a crash" * 100)
    result = genim_oracle("run", "--config", str(config_file(tmp_path, state)))
    line = one_line(result)
    assert result.returncode == 1
    assert "is corrupt" in line and "move it" in line and "rescans from the deployment block" in line, line


def test_an_error_in_an_intact_journal_is_not_called_corruption(tmp_path):
    """A value SQLite cannot bind (a result's token id sent as an object did this) is not a corrupt journal: that
    is said only when SQLite's integrity check fails."""
    from oracle.cli import _storage_problem

    Journal(tmp_path).close()
    unbindable = sqlite3.ProgrammingError("Error binding parameter 1: type 'dict' is not supported")
    line = _storage_problem(tmp_path, unbindable)
    assert "corrupt" not in line and "Error binding parameter 1" in line, line
    (tmp_path / "journal.sqlite3").write_bytes(b"torn" * 1000)
    assert "is corrupt" in _storage_problem(tmp_path, sqlite3.DatabaseError("file is not a database"))


def test_disk_full_is_one_line(tmp_path):
    with tmpfs(tmp_path / "disk", "size=64k") as disk:
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        result = genim_oracle("run", "--config", str(config_file(tmp_path, disk / "state")))
    line = one_line(result)
    assert result.returncode == 1
    assert "database or disk is full" in line and "free space" in line, line


def test_unwritable_state_dir_is_one_line(tmp_path):
    with tmpfs(tmp_path / "readonly", "ro,size=64k") as readonly:
        result = genim_oracle("run", "--config", str(config_file(tmp_path, readonly / "state")))
    line = one_line(result)
    assert result.returncode == 1
    assert f"state_dir {tmp_path / 'readonly' / 'state'} is not writable" in line, line


def test_wrong_passphrase_says_so(tmp_path):
    keystore = Account.encrypt(account_key(1).key, "the right one", iterations=2)
    (tmp_path / "ape" / "accounts").mkdir(parents=True)
    (tmp_path / "ape" / "accounts" / "oracle.json").write_text(json.dumps(keystore))
    config = config_file(tmp_path, tmp_path / "state", account="oracle")
    result = genim_oracle("run", "--config", str(config), APE_DATA_FOLDER=str(tmp_path / "ape"),
                          GENIM_PASSPHRASE="a wrong one")  # fmt: skip
    line = one_line(result)
    assert result.returncode == 1
    assert line == "genim-oracle: wrong passphrase for ape account 'oracle' (read from $GENIM_PASSPHRASE)"


def test_run_without_config_says_how_to_pass_one(tmp_path):
    env = {name: "" for name in os.environ if name.startswith("GENIM_")}
    result = subprocess.run([sys.executable, "-m", "oracle.cli", "run"], cwd=tmp_path, capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k not in env}, timeout=60)  # fmt: skip
    line = one_line(result)
    assert result.returncode == 2
    assert "--config oracle.toml" in line and "oracle.example.toml" in line, line


def test_status_is_quick_and_creates_nothing(tmp_path, dead_rpc):
    state = tmp_path / "never-created"
    started = time.monotonic()
    result = genim_oracle("status", "--config", str(config_file(tmp_path, state, rpc_uri=dead_rpc)))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["jobs"] == {} and "chain_error" in report, report
    assert not state.exists(), "status must not create the state directory"
    assert elapsed < 10, f"status took {elapsed:.1f} s"


def test_withdraw_refuses_beside_a_running_daemon(tmp_path):
    state = tmp_path / "state"
    daemon_lock = Journal(state)
    daemon_lock.lock()
    try:
        result = genim_oracle("withdraw", "--config", str(config_file(tmp_path, state)))
    finally:
        daemon_lock.close()
    line = one_line(result)
    assert result.returncode == 1
    assert "owns the oracle's nonces" in line and "stop it" in line, line


def test_withdraw_prints_a_0x_hash(deployment, tmp_path):
    token_id = deployment.mint(account_key(2), "a paid request", 0)
    deployment.send(deployment.oracle, deployment.nft.functions.setImage(token_id, b"\x01" * 32))
    config = config_file(tmp_path, tmp_path / "state", rpc_uri=deployment.url, contract=deployment.address)
    result = genim_oracle("withdraw", "--config", str(config))
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    tx_hash = words[words.index("in") + 1]
    assert tx_hash.startswith("0x") and len(tx_hash) == 66, result.stdout
    assert deployment.nft.functions.credit(deployment.oracle.address).call() == 0
