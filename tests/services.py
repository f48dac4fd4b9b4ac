"""Real services for the daemon tests (a pytest plugin): anvil, a js-ipfs node, the tiny diffusers pipeline."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from web3 import Web3

from genim_devnet.localnet import anvil, ipfs_node
from genim_devnet.stack import Stack, deploy_stack, dev_account
from genim_devnet.tiny_model import build_tiny_pipeline
from genimnft.contract import Chain
from genimnft.ipfs import IpfsClient
from genimnft.metadata import cid_of_digest, raw_cid
from oracle.config import OracleConfig, TierSettings
from oracle.daemon import Daemon
from oracle.generate import Generator
from oracle.journal import Journal
from oracle.sender import Sender

ROOT = Path(__file__).resolve().parent.parent
SIZES = {0: 64, 1: 96, 2: 128}
BUYERS = range(2, 10)  # test accounts that buy; each holds USDC from the start
RELAYER = 14  # sends USDC mints for buyers


def account_key(index: int):
    return dev_account(index)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("model") / "tiny-sd")


@pytest.fixture(scope="session")
def ipfs():
    with ipfs_node() as node:
        yield node


@pytest.fixture()
def devchain():
    with anvil() as node:
        yield node


class Deployment:
    """The contract stack (GenImNFT, Circle's USDC, Chainlink's feeds) deployed on anvil with web3: the daemon is a
    separate program, not an Ape test. Buyers in BUYERS hold $100 of USDC each."""

    def __init__(self, url: str, contract_type, **stack_options) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url))
        self.owner, self.oracle = account_key(0), account_key(1)
        abi = [entry.model_dump(by_alias=True, mode="json") for entry in contract_type.abi]
        bytecode = contract_type.deployment_bytecode.bytecode
        self.stack: Stack = deploy_stack(self.w3, abi, bytecode, self.owner, [self.oracle.address],
                                         relayer=account_key(RELAYER), **stack_options)  # fmt: skip
        self.stack.fund_usdc([account_key(i).address for i in BUYERS])
        self.address, self.block, self.nft = self.stack.address, self.stack.block, self.stack.nft

    def send(self, account, call, value: int = 0):
        tx = call.build_transaction({"from": account.address, "value": value,
                                     "nonce": self.w3.eth.get_transaction_count(account.address)})  # fmt: skip
        signed = account.sign_transaction(tx)
        return self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def mint(self, account, prompt: str, tier: int, aspect: int = 0) -> int:
        """An ETH mint that pays priceInWei now, naming the current oracle epoch."""
        return self.stack.mint(account, prompt, tier, aspect)

    def mint_usdc(self, account, prompt: str, tier: int, aspect: int = 0) -> int:
        """A USDC mint: `account` signs the EIP-3009 authorization for price(tier), the relayer sends it."""
        return self.stack.mint_usdc(account, prompt, tier, aspect)

    def image_set_events(self) -> list:
        return self.nft.events.ImageSet().get_logs(from_block=self.block)


@pytest.fixture()
def deployment(devchain, project) -> Deployment:
    return Deployment(devchain.url, project.GenImNFT.contract_type)


def oracle_config(deployment: Deployment, ipfs, model: Path, state_dir: Path, **overrides) -> OracleConfig:
    # Sides in multiples of 16 (the tiny model's latent grid), so that every aspect ratio has its own shape.
    tiers = {t: TierSettings(model=str(model), width=s, height=s, steps=1, size_step=16) for t, s in SIZES.items()}
    values = dict(network="optimism:local:foundry", rpc_uri=deployment.url, contract=deployment.address,
                  account="TEST::1", ipfs_api=ipfs.api_url, state_dir=state_dir, start_block=deployment.block,
                  poll_interval=0.2, batch_wait=0.3, metrics_port=0, tiers=tiers, deadline_margin=30)  # fmt: skip
    values.update(overrides)
    return OracleConfig.model_validate(values)


def make_daemon(config: OracleConfig) -> Daemon:
    from oracle.sender import load_account

    journal = Journal(config.state_dir)
    chain = Chain(config.rpc_uri, config.contract_address())
    daemon = Daemon(config, chain, journal, IpfsClient(config.ipfs_api), Generator(config.tiers),
                    Sender(chain, journal, load_account(config.account, config.passphrase_env)))  # fmt: skip
    daemon.preflight()
    return daemon


def assert_all_set_once(deployment: Deployment, ipfs, token_ids, state_dir: Path | None) -> None:
    """Each token: set by exactly one ImageSet, its tokenURI resolves through IPFS to metadata whose digest is
    on-chain, and whose image is a PNG: the one the daemon generated in `state_dir` (None: GPU workers made it)."""
    counts = Counter(event["args"]["tokenId"] for event in deployment.image_set_events())
    assert {t: counts[t] for t in token_ids} == dict.fromkeys(token_ids, 1)
    client = IpfsClient(ipfs.api_url)
    for token_id in token_ids:
        status, _tier, _aspect, _asset, _deadline, _escrow, digest = deployment.nft.functions.request(token_id).call()
        assert status == 2
        uri = deployment.nft.functions.tokenURI(token_id).call()
        metadata = client.cat(uri.removeprefix("ipfs://"))
        assert hashlib.sha256(metadata).digest() == digest
        assert uri == f"ipfs://{raw_cid(metadata)}" == f"ipfs://{cid_of_digest(digest)}"
        image = client.cat(json.loads(metadata)["image"].removeprefix("ipfs://"))
        assert image.startswith(b"\x89PNG")
        if state_dir is not None:
            assert image == (state_dir / "images" / f"{token_id}.png").read_bytes()


def _toml_value(value: object) -> str:
    """A TOML value: JSON's spelling for scalars and lists, an inline table for a table (a tier's `upscale`)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }"
    return json.dumps(value)


def write_config(config: OracleConfig, path: Path) -> Path:
    """The config as the TOML file an operator would write."""
    lines, tables = [], []
    for name, value in config.model_dump(mode="json", exclude_none=True).items():
        if name == "tiers":
            for tier, settings in value.items():
                tables.append(f"[tiers.{tier}]")
                tables += [f"{key} = {_toml_value(item)}" for key, item in settings.items()]
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    path.write_text("\n".join(lines + tables) + "\n")
    return path


def start_daemon(config_path: Path, **env: str) -> subprocess.Popen:
    """`genim-oracle run` as its own process; its log goes next to the config (a pipe could fill and block it)."""
    log = config_path.with_suffix(".log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "oracle.cli", "run", "--config", str(config_path)],
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, stdout=log, stderr=log,
                            cwd=ROOT)  # fmt: skip


def start_worker(config_path: Path, name: str, hold: float | None = None, **env: str) -> subprocess.Popen:
    """A GPU worker process (`genim-oracle worker`): the tiny model (hold None) or HoldingGeneratorDouble, logging
    next to the config as <name>.log."""
    if hold is None:
        command = ["-m", "oracle.cli", "worker", "--config", str(config_path), "--device", "cpu", "--name", name]
    else:
        command = ["-m", "genim_devnet.generator_double", "--config", str(config_path), "--hold", str(hold),
                   "--name", name]  # fmt: skip
    log = config_path.with_name(f"{name}.log").open("ab")
    return subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=log, stderr=log,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **env})  # fmt: skip


def confirmed_count(state_dir: Path) -> int:
    journal = Journal(state_dir)
    try:
        return journal.counts()["confirmed"]
    finally:
        journal.close()


def wait_for(condition, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False
