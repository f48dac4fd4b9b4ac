"""The x402 parts one by one, on real parts: anvil, Circle's FiatTokenV2_2, Chainlink's feeds, GenImNFT, and
payments signed by the x402 SDK's own client. No MCP server here (test_x402.py drives the whole tool)."""

from __future__ import annotations

import threading
import time

import pytest
from web3 import Web3
from x402 import x402ClientSync
from x402.mechanisms.evm.constants import (
    ERR_AUTHORIZATION_VALUE_MISMATCH,
    ERR_INSUFFICIENT_BALANCE,
    ERR_INVALID_SIGNATURE,
    ERR_VALID_BEFORE_EXPIRED,
)
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.schemas import NoMatchingRequirementsError

from genim_devnet.localnet import anvil
from genim_devnet.stack import USDC, deploy_stack, dev_account
from genim_devnet.txn import send
from genim_mcp.terms import image_terms
from genim_mcp.x402_ledger import AlreadyPresented, Ledger
from genim_mcp.x402_settle import NotSettled
from genim_mcp.x402_terms import UsdcRail, payment_required
from genim_mcp.x402_verify import (
    CLOCK_SKEW,
    ERR_OFFER_MISMATCH,
    ChainReader,
    PaymentRefused,
    check_offer,
    check_on_chain,
    check_window,
    parse_payment,
)
from tests.mcp.x402_parts import WINDOW, Seller, buyer_client_sync, seller, usdc_balance

OP_USDC = "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85"  # Circle's native USDC on OP Mainnet
BASIC = image_terms(0, "a heron at dusk", "1:1", "photorealistic")
ULTRA = image_terms(2, "a heron at dusk", "1:1", "photorealistic")
BUYER, POOR, RELAYER = 2, 3, 15


@pytest.fixture(scope="module")
def node():
    with anvil() as running:
        yield running


@pytest.fixture(scope="module")
def stack(node, project):
    w3 = Web3(Web3.HTTPProvider(node.url))
    contract_type = project.GenImNFT.contract_type
    abi = [entry.model_dump(by_alias=True, mode="json") for entry in contract_type.abi]
    deployed = deploy_stack(
        w3, abi, contract_type.deployment_bytecode.bytecode, dev_account(0), [dev_account(1).address]
    )
    deployed.fund_usdc([dev_account(BUYER).address])
    return deployed


@pytest.fixture
def market(node, stack, tmp_path) -> Seller:
    return seller(node.url, stack, dev_account(RELAYER), tmp_path)


def verify(market: Seller, terms, raw: dict):
    """The checks x402_front runs before claiming a payment, in its order."""
    amount = market.chain.contract.functions.price(terms.tier).call()
    offered = market.rail.requirements(terms, amount)
    auth = check_offer(parse_payment(raw), offered)
    check_window(auth, market.chain.timestamp(), market.rail.window)
    check_on_chain(ChainReader(market.chain.w3), market.rail, auth)
    return auth, offered


def claim(market: Seller, terms, raw: dict):
    auth, offered = verify(market, terms, raw)
    payment = market.ledger.claim(auth.payer, auth.nonce_hex, offered.extra["terms"], terms.tier,
                                  auth.value, auth.valid_before)  # fmt: skip
    return payment, auth


def authorization_used(stack, auth) -> bool:
    return stack.usdc.token.functions.authorizationState(auth.payer, auth.nonce).call()


def test_the_sdk_client_pays_exactly_the_offer(market, stack):
    raw = market.pay(dev_account(BUYER), BASIC)
    auth, offered = verify(market, BASIC, raw)
    assert raw["accepted"] == offered.model_dump(by_alias=True)  # it accepted this call's offer as made
    assert auth.payer == dev_account(BUYER).address and auth.value == 100_000 == int(offered.amount)
    assert raw["payload"]["authorization"]["to"] == stack.address
    assert offered.extra["name"] == "USD Coin" and offered.extra["version"] == "2"
    assert abs(auth.valid_before - (time.time() + WINDOW)) < 5 and auth.valid_after == 0


def test_an_agent_on_the_sdk_defaults_refuses_usdc_on_op_mainnet_until_configured():
    rail = UsdcRail(10, "0x" + "11" * 20, OP_USDC, "USD Coin", "2", WINDOW)
    required = payment_required(rail, ULTRA, 800_000, "payment required")
    defaults = x402ClientSync().register("eip155:10", ExactEvmClientScheme(dev_account(BUYER)))
    with pytest.raises(NoMatchingRequirementsError, match="spend_controls"):
        defaults.create_payment_payload(required)
    capped = buyer_client_sync(dev_account(BUYER), "eip155:10", OP_USDC, cap=500_000)
    with pytest.raises(NoMatchingRequirementsError, match="max_amount_per_payment"):
        capped.create_payment_payload(required)  # $0.80 over a $0.50 cap
    payload = buyer_client_sync(dev_account(BUYER), "eip155:10", OP_USDC, cap=1_000_000).create_payment_payload(
        required
    )
    assert payload.payload["authorization"]["value"] == "800000"


def test_a_payment_for_one_call_cannot_pay_for_another(market):
    raw = market.pay(dev_account(BUYER), BASIC)
    with pytest.raises(PaymentRefused, match="another call") as other_tool:
        verify(market, ULTRA, raw)
    assert other_tool.value.reason == ERR_OFFER_MISMATCH
    with pytest.raises(PaymentRefused, match="another call"):
        verify(market, image_terms(0, "a heron at dawn", "1:1", "photorealistic"), raw)
    # Presenting the basic offer as the ultra one: the authorization's value is the basic price.
    raw["accepted"]["extra"]["terms"] = market.rail.terms_digest(ULTRA)
    raw["accepted"]["amount"] = "800000"
    with pytest.raises(PaymentRefused, match=r"\$0.10; this call costs \$0.80") as value:
        verify(market, ULTRA, raw)
    assert value.value.reason == ERR_AUTHORIZATION_VALUE_MISMATCH


def test_window_checks():
    raw_auth = type("A", (), {"valid_after": 0, "valid_before": 10_000})
    with pytest.raises(PaymentRefused, match="expired at 10000") as expired:
        check_window(raw_auth, chain_time=10_000, window=WINDOW, wall_time=9_000)
    assert expired.value.reason == ERR_VALID_BEFORE_EXPIRED
    with pytest.raises(PaymentRefused, match="too soon to settle"):
        check_window(raw_auth, chain_time=9_980, window=WINDOW, wall_time=9_980)
    with pytest.raises(PaymentRefused, match="cannot outlive the call"):
        check_window(raw_auth, chain_time=9_000, window=WINDOW, wall_time=10_000 - WINDOW - CLOCK_SKEW - 1)
    check_window(raw_auth, chain_time=9_690, window=WINDOW, wall_time=9_700)


def test_a_signature_that_is_not_the_payers_is_refused(market):
    raw = market.pay(dev_account(BUYER), BASIC)
    raw["payload"]["authorization"]["from"] = dev_account(BUYER + 1).address  # signed by BUYER, claims another
    with pytest.raises(PaymentRefused, match="signature is not") as bad:
        verify(market, BASIC, raw)
    assert bad.value.reason == ERR_INVALID_SIGNATURE


def test_a_payer_without_the_usdc_is_refused(market):
    with pytest.raises(PaymentRefused, match=r"holds \$0.00 USDC, the price is \$0.10") as poor:
        verify(market, BASIC, market.pay(dev_account(POOR), BASIC))
    assert poor.value.reason == ERR_INSUFFICIENT_BALANCE


def test_the_ledger_binds_an_authorization_to_one_call_and_survives_a_restart(tmp_path):
    ledger = Ledger(tmp_path)
    payment = ledger.claim("0xAbC", "0x01", "terms-a", 0, 100_000, 2_000)
    with pytest.raises(AlreadyPresented, match="being settled by another call"):
        ledger.claim("0xabc", "0x01", "terms-a", 0, 100_000, 2_000)
    with pytest.raises(AlreadyPresented, match="made for another call") as other:
        ledger.claim("0xabc", "0x01", "terms-b", 2, 800_000, 2_000)
    assert not other.value.same_terms
    ledger.unused(payment, "relayer out of gas money")
    again = ledger.claim("0xabc", "0x01", "terms-a", 0, 100_000, 2_000)  # unused: the same call may try again
    ledger.sending(again, "0xtx", "0xraw")
    ledger.settled(again, "0xtx", 7)
    ledger.unused(again, "late")  # a late writer does not undo the outcome
    with pytest.raises(AlreadyPresented, match=r"paid for token 7 in tx 0xtx.*get_image\(7\)"):
        ledger.claim("0xabc", "0x01", "terms-a", 0, 100_000, 2_000)
    ledger.claim("0xabc", "0x02", "terms-c", 1, 300_000, 2_000)
    ledger.close()
    reopened = Ledger(tmp_path)  # a claim never sent is unused after a restart; the settled one stays
    assert reopened.get("0xABC", "0x02").state == "unused"
    assert reopened.get("0xabc", "0x01").state == "settled"


def test_settlement_mints_to_the_payer_with_the_usdc_in_escrow(market, stack):
    buyer = dev_account(BUYER)
    before = usdc_balance(stack, buyer.address), usdc_balance(stack, stack.address)
    relayer_eth = stack.w3.eth.get_balance(market.relayer.address)
    payment, auth = claim(market, ULTRA, market.pay(buyer, ULTRA))
    settled = market.relayer.settle(payment, ULTRA, auth)
    request = stack.nft.functions.request(settled.token_id).call()
    assert stack.nft.functions.ownerOf(settled.token_id).call() == buyer.address
    assert request[3] == USDC and request[5] == 800_000  # asset, escrow in USDC units
    assert usdc_balance(stack, buyer.address) == before[0] - 800_000
    assert usdc_balance(stack, stack.address) == before[1] + 800_000
    tx = stack.w3.eth.get_transaction(settled.tx)
    assert tx["from"] == market.relayer.address and tx["value"] == 0
    assert stack.w3.eth.get_balance(market.relayer.address) < relayer_eth  # the relayer paid the gas
    assert market.ledger.get(auth.payer, auth.nonce_hex).state == "settled"


def test_a_relayer_without_gas_money_leaves_the_authorization_unused(market, stack, node):
    buyer = dev_account(BUYER)
    raw = market.pay(buyer, BASIC)
    payment, auth = claim(market, BASIC, raw)
    funds = stack.w3.eth.get_balance(market.relayer.address)
    node_call(stack, "anvil_setBalance", market.relayer.address, hex(10**9))
    before = usdc_balance(stack, buyer.address)
    with pytest.raises(NotSettled, match=r"relayer .* has 0.000000001 ETH and the mint needs up to") as broke:
        market.relayer.settle(payment, BASIC, auth)
    assert "\n" not in str(broke.value) and "stays unused and nothing was charged" in str(broke.value)
    assert not authorization_used(stack, auth) and usdc_balance(stack, buyer.address) == before
    assert market.ledger.get(auth.payer, auth.nonce_hex).state == "unused"
    node_call(stack, "anvil_setBalance", market.relayer.address, hex(funds))
    payment, auth = claim(market, BASIC, raw)  # the same payment, for the same call, once there is gas money
    assert market.relayer.settle(payment, BASIC, auth).token_id > 0


def test_a_mint_the_contract_refuses_is_never_sent(market, stack):
    payment, auth = claim(market, BASIC, market.pay(dev_account(BUYER), BASIC))
    send(stack.w3, stack.owner, stack.nft.functions.pause())
    try:
        with pytest.raises(NotSettled, match=r"minting is paused.*nothing was sent and nothing was charged"):
            market.relayer.settle(payment, BASIC, auth)
    finally:
        send(stack.w3, stack.owner, stack.nft.functions.unpause())
    assert not authorization_used(stack, auth)
    assert market.ledger.get(auth.payer, auth.nonce_hex).state == "unused"


def test_a_reverted_settlement_charges_nothing(market, stack):
    """The buyer moves its USDC away after the simulation and before the mint's block: the mint reverts, the
    server's second simulation refuses, and the agent is told it was not charged (USDC has the authorization
    unused)."""
    buyer = dev_account(BUYER + 4)
    stack.fund_usdc([buyer.address], 800_000)
    payment, auth = claim(market, ULTRA, market.pay(buyer, ULTRA))
    outcome = settle_paused(market, stack, payment, ULTRA, auth,
                            lambda: drain(stack, buyer))  # fmt: skip
    assert isinstance(outcome, NotSettled), outcome
    assert "reverted in tx" in str(outcome) and "nothing was charged" in str(outcome)
    assert "transfer amount exceeds balance" in str(outcome)
    assert not authorization_used(stack, auth)
    assert market.ledger.get(auth.payer, auth.nonce_hex).state == "reverted"


def test_a_settlement_reverted_by_an_oracle_change_is_minted_again_at_the_new_epoch(market, stack):
    buyer = dev_account(BUYER)
    payment, auth = claim(market, BASIC, market.pay(buyer, BASIC))
    epoch = stack.oracle_epoch()
    outcome = settle_paused(market, stack, payment, BASIC, auth, lambda: front_run(
        stack, stack.owner, stack.nft.functions.setOracle(dev_account(20).address, True)))  # fmt: skip
    assert not isinstance(outcome, Exception), outcome
    assert stack.oracle_epoch() == epoch + 1
    reverted = [r for r in relayer_receipts(stack, market) if r["status"] == 0]
    assert reverted and outcome.tx != reverted[-1]["transactionHash"].to_0x_hex()
    assert stack.nft.functions.ownerOf(outcome.token_id).call() == buyer.address


def test_a_lost_settlement_is_broadcast_again_and_mined_once(market, stack):
    buyer = dev_account(BUYER)
    payment, auth = claim(market, BASIC, market.pay(buyer, BASIC))
    before = usdc_balance(stack, buyer.address)

    def drop(tx_hash: str) -> None:
        node_call(stack, "anvil_dropTransaction", tx_hash)
        assert not known(stack, tx_hash)
        assert wait(lambda: known(stack, tx_hash), 15), "the relayer did not broadcast it again"
        dropped.append(tx_hash)

    dropped: list[str] = []

    outcome = settle_paused(market, stack, payment, BASIC, auth, drop)
    assert not isinstance(outcome, Exception), outcome
    assert usdc_balance(stack, buyer.address) == before - 100_000
    assert dropped == [outcome.tx] and market.ledger.get(auth.payer, auth.nonce_hex).tx == outcome.tx


def test_a_lost_settlement_past_the_window_charges_nothing(market, stack):
    buyer = dev_account(BUYER)
    payment, auth = claim(market, BASIC, market.pay(buyer, BASIC))

    def drop_and_expire(tx_hash: str) -> None:
        node_call(stack, "anvil_dropTransaction", tx_hash)
        assert not known(stack, tx_hash)
        node_call(stack, "evm_setNextBlockTimestamp", auth.valid_before)

    try:
        outcome = settle_paused(market, stack, payment, BASIC, auth, drop_and_expire)
    finally:
        node_call(stack, "evm_setAutomine", True)
    assert isinstance(outcome, NotSettled), outcome
    assert "not mined before the authorization expired" in str(outcome) and "nothing was charged" in str(outcome)
    assert not authorization_used(stack, auth)
    assert market.ledger.get(auth.payer, auth.nonce_hex).state == "expired"


# -- helpers: a settlement whose transaction waits in the mempool while the test acts ------------------------


def settle_paused(market, stack, payment, terms, auth, meanwhile):
    """Runs the relayer's settlement with automine off; once its mint is pending, calls `meanwhile` (with its
    hash, if it takes one), then mines blocks until the settlement ends. Returns Settled or the exception."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = market.relayer.settle(payment, terms, auth)
        except Exception as exc:  # handed to the test
            outcome["value"] = exc

    node_call(stack, "evm_setAutomine", False)
    try:
        worker = threading.Thread(target=run)
        worker.start()
        assert wait(lambda: pending(stack, market.relayer.address), 15), "no mint was sent"
        tx_hash = market.ledger.get(auth.payer, auth.nonce_hex).tx
        if meanwhile.__code__.co_argcount:
            meanwhile(tx_hash)
        else:
            meanwhile()
        deadline = time.monotonic() + 60
        while worker.is_alive() and time.monotonic() < deadline:
            node_call(stack, "evm_mine")
            worker.join(0.3)
    finally:
        node_call(stack, "evm_setAutomine", True)
    worker.join(10)
    return outcome["value"]


def node_call(stack, method: str, *params):
    reply = stack.w3.provider.make_request(method, list(params))
    assert "error" not in reply, reply
    return reply.get("result")


def pending(stack, address: str) -> bool:
    return stack.w3.eth.get_transaction_count(address, "pending") > stack.w3.eth.get_transaction_count(address)


def known(stack, tx_hash: str) -> bool:
    return node_call(stack, "eth_getTransactionByHash", tx_hash) is not None


def wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def front_run(stack, account, call) -> None:
    """Sends `call` from `account` with a tip far above the relayer's, so the next block takes it first."""
    w3 = stack.w3
    tx = call.build_transaction({"from": account.address, "nonce": w3.eth.get_transaction_count(account.address),
                                 "maxPriorityFeePerGas": 100 * 10**9, "maxFeePerGas": 200 * 10**9})  # fmt: skip
    w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)


def drain(stack, buyer) -> None:
    """The buyer sends all its USDC elsewhere, ahead of the relayer's mint."""
    front_run(stack, buyer, stack.usdc.token.functions.transfer(dev_account(21).address,
                                                                usdc_balance(stack, buyer.address)))  # fmt: skip


def relayer_receipts(stack, market) -> list:
    head = stack.w3.eth.block_number
    found = []
    for number in range(max(0, head - 20), head + 1):
        for tx in stack.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == market.relayer.address:
                found.append(stack.w3.eth.get_transaction_receipt(tx["hash"]))
    return found
