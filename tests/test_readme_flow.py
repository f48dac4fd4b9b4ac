"""The README's local flows, run as written: the fenced block under each heading below, line by line in one
bash shell that starts as a new terminal does, on the fixed ports it names, until the image is set, saved and
verified: the daemon alone, and the worker pool on one machine (coordinator, broker, one worker)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess

import pytest

from tests.services import ROOT

FLOWS = {  # heading: loopback ports it binds (anvil, IPFS API, IPFS gateway; AMQP for `make rabbitmq`)
    "### The local flow, command by command": (8545, 5001, 8080),
    "### The worker pool on one machine, command by command": (8545, 5001, 8080, 5672),
}


def readme_flow(heading: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, f"the fenced block under {heading!r} is missing"
    return [line for line in block.group(1).splitlines() if line.strip()]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("heading", FLOWS)
def test_readme_flow_sets_an_image(heading, tmp_path):
    busy = [port for port in FLOWS[heading] if port_in_use(port)]
    if busy:
        pytest.skip(f"the README's flow needs loopback ports {busy} free")
    commands = readme_flow(heading)
    assert commands[0].startswith("make setup") and any("ape run deploy" in c for c in commands)
    script = tmp_path / "flow.sh"
    script.write_text("set -ex\n" + "\n".join(commands) + "\n")
    log = tmp_path / "flow.log"
    with log.open("w") as out:
        flow = subprocess.Popen(["bash", str(script)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=new_shell())  # fmt: skip
    try:
        result = flow.wait(timeout=400)
    finally:
        with contextlib.suppress(ProcessLookupError):  # what a failed line left running (the daemon's `&`)
            os.killpg(flow.pid, signal.SIGTERM)
        subprocess.run(["python", "-m", "genim_devnet.devnode", "stop"], cwd=ROOT, check=False)
    output = log.read_text()
    assert result == 0, output[-4000:]
    uris = re.findall(r'^"?ipfs://bafkrei[a-z2-7]{52}"?$', output, re.M)
    assert uris, f"tokenURI should be the metadata's CID once the image is set:\n{output[-3000:]}"
    assert re.search(r"^saved +\.cache/devnet/fox\.png \(\d+x\d+", output, re.M), output[-3000:]
    verified = re.findall(r"^token 1 (\w+) +(PASS|FAIL) ", output, re.M)
    assert verified == [(check, "PASS") for check in ("digest", "metadata", "image", "regenerated")], output[-3000:]


def new_shell() -> dict[str, str]:
    """What a new terminal has: none of make's PATH or exports, so the flow's own `source .venv/bin/activate`
    must bring forge, cast, anvil and the offline settings."""
    keep = ("HOME", "USER", "LANG", "LC_ALL", "TERM", "TMPDIR", "GENIM_TEST_SESSION")
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", **{k: os.environ[k] for k in keep if k in os.environ}}
