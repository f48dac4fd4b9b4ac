"""The buyer's MCP client config as the README gives it, run by the MCP Inspector's CLI (an MCP client that
starts the server itself, with a minimal environment, from its own working directory), the clone's path put in
for the README's placeholder. The toml it names uses relative paths, which must resolve next to the toml.
Hosted mode says where it listens, and its bare address answers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import httpx
import pytest

from genim_devnet.localnet import free_port
from genim_mcp.config import load_config
from tests.mcp.conftest import ROOT, local_stack

PLACEHOLDER = "/home/me/GenImNFT"
INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"


def readme_client_json() -> dict:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```json\n(\{\s*\"mcpServers\".*?)```", text, re.S)
    assert block, "the README's MCP client JSON is missing"
    return json.loads(block.group(1))


@pytest.fixture(scope="module")
def chain(project, ipfs, tmp_path_factory):
    with local_stack(project, ipfs, tmp_path_factory.mktemp("client-config"), None) as running:
        yield running


def relative_toml(chain, directory, mode: str = "local") -> None:
    """genim-mcp.toml with its deployment file and state beside it, named by relative paths."""
    (directory / "deployments").mkdir(parents=True)
    record = {"address": chain.deployment.address, "chain_id": chain.w3.eth.chain_id, "block": chain.deployment.block}
    (directory / "deployments" / "local.json").write_text(json.dumps(record))
    (directory / "genim-mcp.toml").write_text(
        f'network = "optimism:local:foundry"\nrpc_uri = "{chain.url}"\ndeployment_file = "deployments/local.json"\n'
        f'ipfs_api = "{chain.ipfs.api_url}"\nstate_dir = "state"\nmode = "{mode}"\naccount = "TEST::5"\n'
        "max_wei_per_call = 10000000000000000\nmax_wei_per_day = 100000000000000000\n"
    )


@pytest.mark.skipif(not INSPECTOR.exists(), reason="the MCP Inspector is installed by make setup (package.json)")
def test_readme_client_json_lists_the_tools_through_the_inspector(chain, tmp_path):
    clone = tmp_path / "clone"
    relative_toml(chain, clone)
    config = json.dumps(readme_client_json()).replace(f"{PLACEHOLDER}/genim-mcp.toml", str(clone / "genim-mcp.toml"))
    servers = json.loads(config.replace(PLACEHOLDER, str(ROOT)))
    assert servers["mcpServers"]["genimnft"]["command"] == str(ROOT / ".venv" / "bin" / "genim-mcp")
    (tmp_path / "client.json").write_text(json.dumps(servers))
    elsewhere = tmp_path / "client-cwd"
    elsewhere.mkdir()
    listed = subprocess.run([str(INSPECTOR), "--cli", "--config", str(tmp_path / "client.json"), "--server",
                             "genimnft", "--method", "tools/list"], cwd=elsewhere, capture_output=True, text=True,
                            timeout=180, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                  "MCP_INSPECTOR_SECRET_STORE": "memory"})  # fmt: skip
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    tools = {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    assert {"generate_image_basic", "generate_image_premium", "generate_image_ultra", "list_tiers"} <= tools
    assert (clone / "state").is_dir(), "state_dir resolved next to the toml, not in the client's directory"


def test_shipped_local_config_names_the_local_devnet():
    config = load_config(ROOT / "genim-mcp.local.toml")
    assert config.mode == "local" and config.account and config.rpc_uri == "http://127.0.0.1:8545"
    assert config.deployment_file == ROOT / "deployments" / "optimism-local.json"


def test_hosted_says_where_it_listens_and_answers_at_its_root(chain, tmp_path):
    relative_toml(chain, tmp_path, mode="hosted")
    port = free_port()
    log = (tmp_path / "hosted.log").open("w+")
    server = subprocess.Popen([sys.executable, "-m", "genim_mcp.cli", "hosted", "--config",
                               str(tmp_path / "genim-mcp.toml"), "--port", str(port)], stderr=log, stdout=log,
                              cwd=ROOT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "listening" not in (tmp_path / "hosted.log").read_text():
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "hosted.log").read_text()
            time.sleep(0.2)
        line = (tmp_path / "hosted.log").read_text()
        assert f"MCP (streamable HTTP) at http://127.0.0.1:{port}/mcp" in line
        assert f"pay page at http://127.0.0.1:{port}/pay/" in line
        for _ in range(50):
            try:
                root = httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.ConnectError:
                time.sleep(0.2)
        assert root.status_code == 200 and f"http://127.0.0.1:{port}/mcp" in root.text
    finally:
        server.terminate()
        server.wait(timeout=30)
