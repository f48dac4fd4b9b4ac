"""No process outlives the test session that started it.

Every process a test starts inherits GENIM_TEST_SESSION (a fresh id per session), including daemons that leave
their process group and parent behind, as `epmd -daemon` does. When the session ends, after every fixture has
stopped what it started, any live process still carrying that id fails the run, listed by pid and command.
The session's own connected Ape provider (an anvil the `--network ...:foundry` run keeps until exit) is not
counted.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

MARK = "GENIM_TEST_SESSION"
GRACE_SECONDS = 5.0  # processes signalled at teardown may take a moment to go


def marked_processes(mark: str, exclude: set[int]) -> dict[int, str]:
    """Live processes whose environment carries MARK=mark, by pid, with their command lines."""
    needle = f"{MARK}={mark}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie waiting for its parent: it has already ended
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return found


def leftovers(mark: str, grace: float = GRACE_SECONDS) -> dict[int, str]:
    exclude = {os.getpid(), *_provider_pids()}
    deadline = time.monotonic() + grace
    while (found := marked_processes(mark, exclude)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _provider_pids() -> set[int]:
    try:
        import ape

        process = getattr(ape.chain.provider, "process", None)
    except Exception:  # not connected, or no Ape in this session
        return set()
    return {process.pid} if process is not None else set()


def pytest_configure(config: pytest.Config) -> None:
    os.environ[MARK] = uuid.uuid4().hex  # a nested session (a test that runs pytest) gets its own


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = leftovers(os.environ[MARK])
    if not found:
        return
    lines = "\n".join(f"  pid {pid}: {command}" for pid, command in sorted(found.items()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"{len(found)} process(es) started by this test session are still running:\n{lines}"
    if reporter is not None:
        reporter.write_sep("=", "leftover processes", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
