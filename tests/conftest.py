"""Shared fixtures: accounts by role and one GenImNFT deployment per module (Ape isolates each test)."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.services", "tests.explorer_offline"]

BASIC = 10**15  # 0.001 ether
PREMIUM = 4 * BASIC
ULTRA = 16 * BASIC
FEE_BPS = 500


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


@pytest.fixture(scope="module")
def nft(project, owner, oracle, alice, bob):
    return owner.deploy(project.GenImNFT, owner, [BASIC, PREMIUM, ULTRA], FEE_BPS, [oracle])
