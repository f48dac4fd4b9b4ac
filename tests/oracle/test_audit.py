"""`genim-oracle show` and `genim-oracle verify` on a token the daemon really set (anvil, js-ipfs, tiny model).

verify passes a good token with every check, bit-exact; fails a token whose image IPFS serves swapped (other
bytes under the image's CID); and fails a token set with another model than the one its metadata names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genim_devnet.localnet import anvil
from genim_devnet.tiny_model import build_tiny_pipeline
from genimnft.contract import Chain
from genimnft.ipfs import IpfsClient
from oracle.audit import PERCEPTUAL_THRESHOLD, generator_regenerate, perceptual_distance, verify
from oracle.lookup import fetch_content, read_token
from oracle.show import NotReady, wait_for_image
from tests.services import ROOT, Deployment, account_key, make_daemon, oracle_config, write_config

PROMPT = "a red fox in the snow"


@pytest.fixture(scope="module")
def token(project, ipfs, tiny_model, tmp_path_factory):
    """One token minted in ETH and set by the daemon; yields (deployment, config path, token id)."""
    work = tmp_path_factory.mktemp("audit")
    with anvil() as node:
        deployment = Deployment(node.url, project.GenImNFT.contract_type)
        token_id = deployment.mint(account_key(2), PROMPT, 0, 1)  # 16:9
        config = oracle_config(deployment, ipfs, tiny_model, work / "state", gateway_url=ipfs.gateway_url)
        daemon = make_daemon(config)
        assert daemon.drain(timeout=120)
        daemon.journal.close()
        yield deployment, write_config(config, work / "oracle.toml"), token_id


def genim_oracle(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oracle.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)  # fmt: skip


def run_verify(deployment, ipfs, token_id, client=None, **kwargs):
    chain = Chain(deployment.url, deployment.address)
    config_tiers = oracle_config(deployment, ipfs, kwargs.pop("model"), Path("unused")).tiers
    return verify(chain, client or IpfsClient(ipfs.api_url), [token_id], deployment.block, 2000, config_tiers,
                  generator_regenerate("cpu"), kwargs.pop("models", {}))  # fmt: skip


def test_show_prints_the_links_and_saves_the_png(token, tmp_path):
    _deployment, config, token_id = token
    out = tmp_path / "fox.png"
    shown = genim_oracle("show", str(token_id), "--config", str(config), "--wait", "5", "--out", str(out))
    assert shown.returncode == 0, shown.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    lines = dict(line.split(maxsplit=1) for line in shown.stdout.splitlines()[1:])
    assert lines["tokenURI"].startswith("ipfs://bafkrei") and lines["image"].startswith("ipfs://bafkrei")
    assert lines["gateway"].endswith(lines["image"].removeprefix("ipfs://")) and "/ipfs/" in lines["gateway"]
    assert lines["saved"].startswith(f"{out} (")


def test_waiting_for_an_image_that_never_comes_gives_up_with_why(token):
    deployment, _config, token_id = token
    chain = Chain(deployment.url, deployment.address)
    with pytest.raises(NotReady, match=r"does not exist .* after 1 s: was it minted"):
        wait_for_image(chain, token_id + 100, 1)


def test_verify_passes_a_good_token_bit_exact(token):
    _deployment, config, token_id = token
    done = genim_oracle("verify", str(token_id), "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["digest", "metadata", "image", "regenerated"]
    assert all(" PASS " in line for line in lines) and "bit for bit" in lines[-1]
    everything = genim_oracle("verify", "--all", "--config", str(config), "--no-regenerate")
    assert everything.returncode == 0 and len(everything.stdout.splitlines()) == 4


class SwappedImage(IpfsClient):
    """An IPFS node (or gateway) that serves other bytes under the image's CID."""

    def __init__(self, api_url: str, image_cid: str, other: bytes) -> None:
        super().__init__(api_url)
        self.image_cid, self.other = image_cid, other

    def cat(self, cid: str, timeout_s: int = 10) -> bytes:
        return self.other if cid == self.image_cid else super().cat(cid, timeout_s)


def test_verify_fails_an_image_swapped_on_ipfs(token, ipfs, tiny_model):
    deployment, _config, token_id = token
    chain = Chain(deployment.url, deployment.address)
    content = fetch_content(IpfsClient(ipfs.api_url), read_token(chain, token_id, {}).metadata_cid)
    other = generator_regenerate("cpu")(oracle_config(deployment, ipfs, tiny_model, Path("x")).tiers[0], 0,
                                        "another prompt", 7, 1)  # fmt: skip
    lines, passed = run_verify(deployment, ipfs, token_id, SwappedImage(ipfs.api_url, content.image_cid, other),
                               model=tiny_model)  # fmt: skip
    assert not passed
    image = next(line for line in lines if line.split()[2] == "image")
    assert " FAIL " in image and "have the CID" in image
    regenerated = next(line for line in lines if line.split()[2] == "regenerated")
    assert " FAIL " in regenerated


def test_verify_fails_a_token_set_with_another_model(token, ipfs, tiny_model, tmp_path_factory):
    """The metadata names tiny-sd; the image was not made by the tiny-sd the auditor loads (other weights)."""
    deployment, _config, token_id = token
    other_model = build_tiny_pipeline(tmp_path_factory.mktemp("other") / "tiny-sd", seed=1)
    lines, passed = run_verify(deployment, ipfs, token_id, model=tiny_model, models={"tiny-sd": str(other_model)})
    assert not passed
    *chain_and_ipfs, regenerated = lines
    assert all(" PASS " in line for line in chain_and_ipfs)
    assert " FAIL " in regenerated and f"threshold {PERCEPTUAL_THRESHOLD}" in regenerated


def test_perceptual_distance_of_an_image_and_itself_is_zero(token, ipfs):
    deployment, _config, token_id = token
    chain = Chain(deployment.url, deployment.address)
    content = fetch_content(IpfsClient(ipfs.api_url), read_token(chain, token_id, {}).metadata_cid)
    assert perceptual_distance(content.image, content.image) == 0


def test_status_into_head_ends_quietly(token):
    _deployment, config, _token_id = token
    for _ in range(3):
        piped = subprocess.run(f"{sys.executable} -m oracle.cli status --config {config} | head -2", shell=True,
                               capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
        assert len(piped.stdout.splitlines()) == 2
        assert "Traceback" not in piped.stderr and "BrokenPipeError" not in piped.stderr, piped.stderr
