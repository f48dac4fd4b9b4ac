"""Local services for the demo, the tests and the benchmarks: an anvil chain and a js-ipfs node.

Both bind loopback only, on free ports, with fresh state, and stop with their context manager.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
TEST_MNEMONIC = "test test test test test test test test test test test junk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        if ready():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def _stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Anvil:
    """An anvil node in OP-stack mode with Ape's test accounts (same mnemonic, 30 accounts)."""

    url: str
    process: subprocess.Popen

    def rpc(self, method: str, *params: object) -> object:
        reply = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        body = reply.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def answers(self) -> bool:
        try:
            self.rpc("eth_chainId")
            return True
        except httpx.HTTPError:
            return False


def anvil_command(port: int, block_time: float | None = None) -> list[str]:
    """anvil in OP-stack mode on loopback, with Ape's test accounts (same mnemonic, 30 accounts)."""
    binary = shutil.which("anvil") or str(NODE_MODULES / "@foundry-rs/anvil-linux-amd64/bin/anvil")
    cmd = [binary, "--host", "127.0.0.1", "--port", str(port), "--mnemonic", TEST_MNEMONIC, "--accounts", "30",
           "--optimism", "--silent"]  # fmt: skip
    return cmd + (["--block-time", str(block_time)] if block_time else [])


@contextlib.contextmanager
def anvil(block_time: float | None = None, port: int | None = None) -> Iterator[Anvil]:
    port = port or free_port()
    process = subprocess.Popen(anvil_command(port, block_time), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    node = Anvil(f"http://127.0.0.1:{port}", process)
    try:
        wait_until(node.answers, "anvil", 30, process)
        yield node
    finally:
        _stop(process)


@dataclass
class IpfsNode:
    """A js-ipfs node, offline, with the Kubo-compatible RPC API at `api_url`."""

    api_url: str
    gateway_url: str
    repo: Path
    process: subprocess.Popen | None = None

    def start(self, detach: bool = False) -> None:
        """Starts the node and waits until it answers; `detach` lets it outlive this process (`make ipfs`)."""
        env = {**os.environ, "IPFS_PATH": str(self.repo)}
        log = (self.repo / "daemon.log").open("ab")
        self.process = subprocess.Popen([*_jsipfs(), "daemon"], env=env, stdout=log, stderr=log,
                                        start_new_session=detach)  # fmt: skip
        wait_until(self.answers, "IPFS node", 60, self.process)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def answers(self) -> bool:
        try:
            return httpx.post(f"{self.api_url}/api/v0/version", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _jsipfs() -> list[str]:
    """toolchain/ipfs-node.mjs: js-ipfs core, RPC API and gateway; always offline, no preload."""
    return ["node", "-r", str(ROOT / "toolchain/node-polyfills.cjs"), str(ROOT / "toolchain/ipfs-node.mjs")]


def init_repo(repo: Path, api_port: int, gateway_port: int) -> None:
    """A js-ipfs repo that runs offline on loopback: empty Swarm addresses (js-ipfs cannot bind them here),
    no bootstrap, no discovery."""
    env = {**os.environ, "IPFS_PATH": str(repo)}
    subprocess.run([*_jsipfs(), "init"], env=env, check=True, capture_output=True)
    config_path = repo / "config"
    config = json.loads(config_path.read_text())
    config["Addresses"] = {
        "Swarm": [],
        "Announce": [],
        "NoAnnounce": [],
        "API": f"/ip4/127.0.0.1/tcp/{api_port}",
        "Gateway": f"/ip4/127.0.0.1/tcp/{gateway_port}",
        "RPC": f"/ip4/127.0.0.1/tcp/{free_port()}",
        "Delegates": [],
    }
    config["Bootstrap"] = []
    config["Discovery"] = {"MDNS": {"Enabled": False, "Interval": 10}, "webRTCStar": {"Enabled": False}}
    config_path.write_text(json.dumps(config, indent=2))


@contextlib.contextmanager
def ipfs_node(repo: Path | None = None) -> Iterator[IpfsNode]:
    """A fresh js-ipfs node on free loopback ports; its repo is removed afterwards unless one was given."""
    owned = repo is None
    repo = repo or Path(tempfile.mkdtemp(prefix="genim-ipfs-"))
    api_port, gateway_port = free_port(), free_port()
    init_repo(repo, api_port, gateway_port)
    node = IpfsNode(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{gateway_port}", repo)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        if owned:
            shutil.rmtree(repo, ignore_errors=True)
