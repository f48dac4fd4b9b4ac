"""Real services for the daemon tests (a pytest plugin): anvil, a js-ipfs node, the tiny diffusers pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from oracle.chain import Chain
from oracle.config import OracleConfig, TierSettings
from oracle.daemon import Daemon
from oracle.generate import Generator
from oracle.ipfs import IpfsClient
from oracle.journal import Journal
from oracle.localnet import TEST_MNEMONIC, anvil, ipfs_node
from oracle.sender import Sender
from oracle.tiny_model import build_tiny_pipeline

Account.enable_unaudited_hdwallet_features()
PRICES = [10**15, 4 * 10**15, 16 * 10**15]
FEE_BPS = 500
SIZES = {0: 64, 1: 96, 2: 128}


def account_key(index: int):
    return Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


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
    """GenImNFT deployed on anvil with web3 (the daemon is a separate program, not an Ape test)."""

    def __init__(self, url: str, contract_type) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url))
        self.owner, self.oracle = account_key(0), account_key(1)
        factory = self.w3.eth.contract(
            abi=[abi.model_dump(by_alias=True, mode="json") for abi in contract_type.abi],
            bytecode=contract_type.deployment_bytecode.bytecode,
        )
        receipt = self.send(self.owner, factory.constructor(self.owner.address, PRICES, FEE_BPS, [self.oracle.address]))
        self.address = receipt["contractAddress"]
        self.block = receipt["blockNumber"]
        self.nft = self.w3.eth.contract(address=self.address, abi=factory.abi)

    def send(self, account, call, value: int = 0):
        tx = call.build_transaction({"from": account.address, "value": value,
                                     "nonce": self.w3.eth.get_transaction_count(account.address)})  # fmt: skip
        signed = account.sign_transaction(tx)
        return self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def mint(self, account, prompt: str, tier: int) -> int:
        receipt = self.send(account, self.nft.functions.mint(prompt, tier), value=PRICES[tier])
        [event] = self.nft.events.ImageRequested().process_receipt(receipt, errors=DISCARD)
        return event["args"]["tokenId"]

    def image_set_events(self) -> list:
        return self.nft.events.ImageSet().get_logs(from_block=self.block)


@pytest.fixture()
def deployment(devchain, project) -> Deployment:
    return Deployment(devchain.url, project.GenImNFT.contract_type)


def oracle_config(deployment: Deployment, ipfs, model: Path, state_dir: Path, **overrides) -> OracleConfig:
    tiers = {t: TierSettings(model=str(model), width=s, height=s, steps=1) for t, s in SIZES.items()}
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
