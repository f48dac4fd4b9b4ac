"""The README's local flow, run as written: the fenced block under "The local flow, command by command",
line by line in one bash shell, on the fixed ports it names, until the image is set."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from tests.services import ROOT

HEADING = "### The local flow, command by command"
PORTS = (8545, 5001, 8080)  # anvil, IPFS API, IPFS gateway: what `make anvil` / `make ipfs` bind


def readme_flow() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(HEADING) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the local flow's fenced block is missing"
    return [line for line in block.group(1).splitlines() if line.strip()]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_readme_local_flow_sets_an_image(tmp_path):
    busy = [port for port in PORTS if port_in_use(port)]
    if busy:
        pytest.skip(f"the README's flow needs loopback ports {busy} free")
    commands = readme_flow()
    assert commands[0].startswith("make setup") and any("ape run deploy" in c for c in commands)
    script = tmp_path / "flow.sh"
    script.write_text("set -ex\n" + "\n".join(commands) + "\n")
    log = tmp_path / "flow.log"
    try:
        with log.open("w") as out:
            result = subprocess.run(["bash", str(script)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=400, start_new_session=True)  # fmt: skip
    finally:
        subprocess.run(["python", "-m", "genim_devnet.devnode", "stop"], cwd=ROOT, check=False)
    output = log.read_text()
    assert result.returncode == 0, output[-4000:]
    uris = re.findall(r'^"?ipfs://bafkrei[a-z2-7]{52}"?$', output, re.M)
    assert uris, f"tokenURI should be the metadata's CID once the image is set:\n{output[-3000:]}"
