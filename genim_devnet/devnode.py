"""`make anvil`, `make ipfs`, `make rabbitmq`, `make devnet-stop`: the README's local flows, services in the
background.

Each starts on the fixed loopback port the local configs use (anvil 8545, IPFS API 5001, gateway 8080, AMQP 5672),
waits until it answers, records its pid under .cache/devnet and returns; `stop` ends what was recorded. A new anvil
is a new chain, so it also clears the local oracle's and MCP front's state kept for the old one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys

from genim_devnet.broker import Broker, amqp_answers
from genim_devnet.localnet import ROOT, Anvil, IpfsNode, anvil_command, init_repo, wait_until

DEVNET = ROOT / ".cache" / "devnet"
ANVIL_PORT, IPFS_API_PORT, IPFS_GATEWAY_PORT, RABBITMQ_PORT = 8545, 5001, 8080, 5672
ORACLE_STATE = DEVNET / "oracle-state"  # state_dir of oracle.local.toml
MCP_STATE = DEVNET / "mcp-state"  # state_dir of genim-mcp.local.toml


def _record(name: str, pid: int) -> None:
    (DEVNET / f"{name}.pid").write_text(str(pid))


def start_anvil() -> str:
    DEVNET.mkdir(parents=True, exist_ok=True)
    node = Anvil(f"http://127.0.0.1:{ANVIL_PORT}", None)  # type: ignore[arg-type]
    if node.answers():
        raise SystemExit(f"something already answers on {node.url}: stop it first (make devnet-stop)")
    for state in (ORACLE_STATE, MCP_STATE):  # they belong to the old chain
        shutil.rmtree(state, ignore_errors=True)
    process = subprocess.Popen(anvil_command(ANVIL_PORT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    node.process = process
    wait_until(node.answers, "anvil", 30, process)
    _record("anvil", process.pid)
    return f"anvil (OP-stack mode, Ape's test accounts) at {node.url}, pid {process.pid}"


def start_ipfs() -> str:
    repo = DEVNET / "ipfs"
    if not (repo / "config").exists():
        repo.mkdir(parents=True, exist_ok=True)
        init_repo(repo, IPFS_API_PORT, IPFS_GATEWAY_PORT)
    node = IpfsNode(f"http://127.0.0.1:{IPFS_API_PORT}", f"http://127.0.0.1:{IPFS_GATEWAY_PORT}", repo)
    if node.answers():
        raise SystemExit(f"an IPFS node already answers on {node.api_url}: stop it first (make devnet-stop)")
    node.start(detach=True)
    assert node.process is not None
    _record("ipfs", node.process.pid)
    return f"js-ipfs node (offline) API at {node.api_url}, gateway {node.gateway_url}, pid {node.process.pid}"


def start_rabbitmq() -> str:
    """Debian's rabbitmq-server as the worker pool's broker, loopback only, guest/guest (RabbitMQ admits guest
    from loopback only), its data under .cache/devnet/rabbitmq; its port mapper on a port of its own."""
    home = DEVNET / "rabbitmq"
    home.mkdir(parents=True, exist_ok=True)
    node = Broker(home, port=RABBITMQ_PORT)
    if amqp_answers(RABBITMQ_PORT):
        raise SystemExit(f"something already answers AMQP on {node.url}: stop it first (make devnet-stop)")
    node.start()
    assert node.process is not None and node.epmd is not None
    _record("rabbitmq", node.process.pid)
    _record("rabbitmq-epmd", node.epmd.pid)
    return f"RabbitMQ (loopback only) at {node.url}, pid {node.process.pid}"


def stop() -> str:
    """Each recorded service and its process group (they were started in sessions of their own)."""
    stopped = []
    for pidfile in sorted(DEVNET.glob("*.pid")):
        pid = int(pidfile.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(f"{pidfile.stem} ({pid})")
        except ProcessLookupError:
            pass
        pidfile.unlink()
    return "stopped " + (", ".join(stopped) or "nothing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genim_devnet.devnode", description=__doc__)
    parser.add_argument("service", choices=["anvil", "ipfs", "rabbitmq", "stop"])
    args = parser.parse_args(argv)
    starts = {"anvil": start_anvil, "ipfs": start_ipfs, "rabbitmq": start_rabbitmq, "stop": stop}
    print(starts[args.service](), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
