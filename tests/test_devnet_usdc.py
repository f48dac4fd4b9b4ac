"""genim_devnet.usdc and .feeds on a fresh anvil: Circle's real FiatTokenV2_2 accepts our EIP-3009 signatures,
and Chainlink's MockV3Aggregator feeds read back as set."""

from __future__ import annotations

import pytest
from eth_account.messages import encode_typed_data
from web3 import Web3
from web3.exceptions import ContractLogicError

from genim_devnet.feeds import GRACE_PERIOD, deploy_feeds, usd_answer
from genim_devnet.localnet import anvil
from genim_devnet.txn import send
from genim_devnet.usdc import (
    deploy_usdc,
    random_nonce,
    sign_cancel_authorization,
    sign_receive_authorization,
    sign_transfer_authorization,
)
from tests.services import account_key

DOLLAR = 10**6
FOREVER = 2**64


@pytest.fixture(scope="module")
def w3():
    with anvil() as node:
        yield Web3(Web3.HTTPProvider(node.url))


@pytest.fixture(scope="module")
def usdc(w3):
    return deploy_usdc(w3, account_key(10), account_key(11), minter=account_key(12))


@pytest.fixture(scope="module")
def alice():
    return account_key(2)


@pytest.fixture(scope="module")
def relayer():
    return account_key(4)


def test_deployed_as_circle_does(w3, usdc):
    calls = usdc.token.functions
    assert (calls.name().call(), calls.symbol().call(), calls.currency().call()) == ("USD Coin", "USDC", "USD")
    assert (calls.decimals().call(), calls.version().call()) == (6, "2")
    assert calls.owner().call() == calls.masterMinter().call() == usdc.owner.address
    assert calls.isMinter(usdc.minter.address).call()
    domain = {"name": "USD Coin", "version": "2", "chainId": w3.eth.chain_id, "verifyingContract": usdc.address}
    header = encode_typed_data(domain, {"T": [{"name": "x", "type": "uint256"}]}, {"x": 0}).header
    assert calls.DOMAIN_SEPARATOR().call() == header
    implementation = w3.eth.contract(address=usdc.implementation, abi=usdc.abi).functions
    with pytest.raises(ContractLogicError, match="already initialized"):  # locked by Circle's throwaway initialise
        implementation.initialize("x", "x", "x", 6, *[usdc.owner.address] * 4).call()
    with pytest.raises(ContractLogicError, match="proxy admin"):
        calls.balanceOf(usdc.admin.address).call({"from": usdc.admin.address})


def test_transfer_with_authorization_both_overloads_once_each(w3, usdc, alice, relayer):
    bob = account_key(3).address
    usdc.mint(alice.address, 10 * DOLLAR)
    calls = usdc.token.functions
    gas = []
    for packed in (False, True):
        nonce = random_nonce()
        args = (alice.address, bob, DOLLAR, 0, FOREVER, nonce)
        sig = sign_transfer_authorization(alice, usdc.address, w3.eth.chain_id, bob, DOLLAR, 0, FOREVER, nonce)
        call = calls.transferWithAuthorization(*args, *((sig.signature,) if packed else (sig.v, sig.r, sig.s)))
        gas.append(send(w3, relayer, call)["gasUsed"])  # sent by a third account, as a relayer or contract would
        assert calls.authorizationState(alice.address, nonce).call()
        with pytest.raises(ContractLogicError, match="authorization is used or canceled"):
            call.call({"from": relayer.address})
    assert usdc.balance_of(bob) == 2 * DOLLAR
    assert usdc.balance_of(alice.address) == 8 * DOLLAR
    # Measured on FiatTokenV2_2 (usd-x402.md): ~103k to a new holder (v,r,s), ~86k to an existing one (bytes).
    assert 95_000 < gas[0] < 110_000 and 80_000 < gas[1] < 92_000, gas


def test_tampered_or_wrong_signatures_rejected(w3, usdc, alice, relayer):
    bob = account_key(3).address
    usdc.mint(alice.address, DOLLAR)
    calls = usdc.token.functions
    nonce = random_nonce()
    sig = sign_transfer_authorization(alice, usdc.address, w3.eth.chain_id, bob, DOLLAR, 0, FOREVER, nonce)
    with pytest.raises(ContractLogicError, match="invalid signature"):  # value changed after signing
        calls.transferWithAuthorization(alice.address, bob, DOLLAR + 1, 0, FOREVER, nonce, sig.signature).call()
    receive = sign_receive_authorization(alice, usdc.address, w3.eth.chain_id, bob, DOLLAR, 0, FOREVER, nonce)
    with pytest.raises(ContractLogicError, match="invalid signature"):  # the other EIP-3009 typehash
        calls.transferWithAuthorization(alice.address, bob, DOLLAR, 0, FOREVER, nonce, receive.signature).call()
    with pytest.raises(ContractLogicError, match="caller must be the payee"):
        calls.receiveWithAuthorization(alice.address, bob, DOLLAR, 0, FOREVER, nonce, receive.signature).call(
            {"from": relayer.address}
        )
    assert not calls.authorizationState(alice.address, nonce).call()


def test_cancel_authorization_burns_the_nonce(w3, usdc, alice, relayer):
    bob = account_key(3).address
    usdc.mint(alice.address, DOLLAR)
    calls = usdc.token.functions
    nonce = random_nonce()
    sig = sign_transfer_authorization(alice, usdc.address, w3.eth.chain_id, bob, DOLLAR, 0, FOREVER, nonce)
    cancel = sign_cancel_authorization(alice, usdc.address, w3.eth.chain_id, nonce)
    send(w3, relayer, calls.cancelAuthorization(alice.address, nonce, cancel.v, cancel.r, cancel.s))
    with pytest.raises(ContractLogicError, match="authorization is used or canceled"):
        calls.transferWithAuthorization(alice.address, bob, DOLLAR, 0, FOREVER, nonce, sig.signature).call()


def test_feeds_read_back(w3, alice):
    feeds = deploy_feeds(w3, account_key(11), 3000)
    _, answer, _, updated_at, _ = feeds.eth_usd.functions.latestRoundData().call()
    assert (feeds.eth_usd.functions.decimals().call(), answer) == (8, 3000 * 10**8)
    assert updated_at == feeds.now()
    _, status, started_at, _, _ = feeds.sequencer.functions.latestRoundData().call()
    assert (feeds.sequencer.functions.decimals().call(), status) == (0, 0)
    assert feeds.now() - started_at > GRACE_PERIOD
    feeds.set_price("2512.5")
    assert feeds.eth_usd.functions.latestRoundData().call()[1] == usd_answer("2512.5") == 251_250_000_000
    feeds.make_stale(7200)
    _, answer, _, updated_at, _ = feeds.eth_usd.functions.latestRoundData().call()
    # Dated from the block before the update's own: anvil may give that block the next second.
    assert answer == 251_250_000_000 and 7200 <= feeds.now() - updated_at <= 7201
    feeds.sequencer_down()
    assert feeds.sequencer.functions.latestRoundData().call()[1] == 1
    feeds.sequencer_up(since=60)
    _, status, started_at, _, _ = feeds.sequencer.functions.latestRoundData().call()
    assert status == 0 and 60 <= feeds.now() - started_at <= 61
