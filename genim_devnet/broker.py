"""A throwaway RabbitMQ broker for the tests, the demo and the benchmarks (Debian's `rabbitmq-server`).

Loopback only, on free ports (AMQP, Erlang distribution, epmd), with its data, logs, config and Erlang cookie
in a temporary directory, no plugins; stopped by its process group, never by name. `kill9()` and `start()`
on the same directory restart it with its durable queues, as after a crash; `lose_disk()` between them restarts
it empty.

Its Erlang port mapper runs in the foreground as a child of this process, on the broker's own epmd port: left
to itself, rabbitmq-server would start `epmd -daemon`, which leaves the process group, ignores SIGTERM and
outlives the broker. Like a host's epmd service it survives `kill9()`; `stop()` ends it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from genim_devnet.localnet import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = "/usr/bin/epmd"  # Debian's erlang-base, a dependency of rabbitmq-server


@dataclass
class Broker:
    """One RabbitMQ node; `url` is the AMQP URL of its default guest user (loopback only)."""

    home: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    epmd: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def node(self) -> str:
        return f"genim-test-{self.port}@localhost"

    def start(self, timeout: float = 60.0) -> None:
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users.guest = true\n"
            "log.console = false\nlog.file.level = warning\n"
        )
        (self.home / "enabled_plugins").write_text("[].\n")
        env = {
            **os.environ,
            "HOME": str(self.home),  # the Erlang cookie goes here, not in the user's home
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.home / "rabbitmq.pid"),
            "RABBITMQ_SERVER_START_ARGS": (
                f"-kernel inet_dist_use_interface {{127,0,0,1}} -epmd_port {self.epmd_port} -start_epmd false"
            ),
        }
        self._start_epmd()
        log = (self.home / "server.out").open("ab")
        self.process = subprocess.Popen(
            [str(SERVER)], env=env, stdout=log, stderr=log, cwd=self.home, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.process.returncode}; see {self.home}/log")
            if amqp_answers(self.port):
                return
            time.sleep(0.2)
        raise TimeoutError(f"RabbitMQ not ready after {timeout:.0f} s; see {self.home}/log")

    def _start_epmd(self) -> None:
        if self.epmd is not None and self.epmd.poll() is None:
            return
        log = (self.home / "epmd.out").open("ab")
        self.epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                     stdout=log, stderr=log, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while not _port_open(self.epmd_port):
            if self.epmd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"epmd did not start on port {self.epmd_port}; see {self.home}/epmd.out")
            time.sleep(0.05)

    def kill9(self) -> None:
        """SIGKILL to the whole process group (beam, the shell wrapper), like a crash; epmd stays."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM, grace=15.0)
        if self.epmd is not None:
            self.epmd.kill()  # a throwaway port mapper: nothing to flush
            self.epmd.wait()
            self.epmd = None

    def lose_disk(self) -> None:
        """Deletes the stopped node's data (queues, messages, exchanges): the next start is a broker without its
        disk."""
        assert self.process is None, "stop or kill the node first"
        shutil.rmtree(self.home / "mnesia", ignore_errors=True)

    def _signal(self, signum: int, grace: float = 5.0) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # epmd may have left the group's leader behind; the port must be free for a restart.
        deadline = time.monotonic() + grace
        while amqp_answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.process = None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def amqp_answers(port: int) -> bool:
    """The AMQP listener answers the protocol header with its own (connection.start)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return len(sock.recv(8)) > 0
    except OSError:
        return False


def available() -> bool:
    return SERVER.is_file()


@contextlib.contextmanager
def rabbitmq() -> Iterator[Broker]:
    """A fresh broker; its directory is removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="genim-rabbitmq-"))
    broker = Broker(home)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
