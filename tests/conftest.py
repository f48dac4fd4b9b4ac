"""Shared fixtures: accounts by role and one contract stack per module (Ape isolates each test): GenImNFT through
Ape, with Circle's USDC and Chainlink's feeds deployed beside it through the provider's web3."""

from __future__ import annotations

import pytest

from genim_devnet.stack import Stack, deploy_stack, dev_account

pytest_plugins = ["tests.services", "tests.explorer_offline", "tests.leftovers"]


@pytest.fixture(scope="session")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def oracle(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def relayer(accounts):
    return accounts[4]


@pytest.fixture(scope="module")
def stack(project, chain, owner, oracle, relayer) -> Stack:
    """USDC, the ETH/USD and sequencer feeds (ETH at $3000) and GenImNFT owned by `owner` with `oracle`."""
    key = dev_account(0)
    assert key.address == owner.address, "Ape's test accounts come from the test mnemonic"
    contract_type = project.GenImNFT.contract_type
    abi = [entry.model_dump(by_alias=True, mode="json") for entry in contract_type.abi]
    return deploy_stack(chain.provider.web3, abi, contract_type.deployment_bytecode.bytecode, key, [oracle.address],
                        relayer=dev_account(4))  # fmt: skip


@pytest.fixture(scope="module")
def nft(project, stack):
    return project.GenImNFT.at(stack.address)
