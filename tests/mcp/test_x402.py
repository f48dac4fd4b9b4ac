"""Agents that pay by themselves: x402 on genim-mcp (hosted, streamable HTTP), settled into the token's escrow.

The buyer is the x402 SDK's own MCP client (`x402MCPSession` over the `mcp` SDK's ClientSession) with its `exact`
EVM scheme signing for a test key, spend controls allowing the local USDC. USDC is Circle's FiatTokenV2_2 on
anvil, the image comes from the oracle daemon with the tiny model. Where a test must present a payment the SDK
would not (a replay, a tampered or misdirected one), the SDK's client signs it and the test presents it raw.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from collections.abc import AsyncIterator

import anyio
import pytest
from mcp import ClientSession
from x402.mcp import MCP_PAYMENT_META_KEY, x402MCPSession
from x402.schemas import PaymentRequired

from genim_devnet.stack import USDC
from tests.mcp.conftest import LogLog, front_config, hosted_server, http_session, local_stack
from tests.mcp.x402_parts import WINDOW, buyer_client
from tests.services import account_key

RELAYER, BROKE_RELAYER, POOR = 16, 17, 13
PROMPT = {"prompt": "a kingfisher over a stream", "aspect_ratio": "16:9", "style": "artistic"}
PAID = re.compile(r"paid: token (\d+) minted")


@pytest.fixture(scope="module")
def server(stack, tmp_path_factory):
    config = front_config(stack, tmp_path_factory.mktemp("x402") / "front.toml", relayer=f"TEST::{RELAYER}",
                          x402_window=WINDOW)  # fmt: skip
    with hosted_server(config) as running:
        yield running


class Agent:
    """One buyer: the SDK's x402 client for its key (every payment it signs is kept), and an MCP session."""

    def __init__(self, stack, index: int) -> None:
        self.stack = stack
        self.account = account_key(index)
        usdc = stack.contracts.usdc.address
        self.client = buyer_client(self.account, f"eip155:{stack.w3.eth.chain_id}", usdc, cap=10**6)
        self.payments: list[dict] = []
        self.client.on_after_payment_creation(
            lambda ctx: self.payments.append(ctx.payment_payload.model_dump(by_alias=True))
        )

    @contextlib.asynccontextmanager
    async def session(self, server, logs: LogLog | None = None) -> AsyncIterator[tuple[x402MCPSession, ClientSession]]:
        async with http_session(server, logs) as session:
            yield x402MCPSession(session, self.client), session

    async def sign_for(self, session: ClientSession, tool: str, arguments: dict) -> dict:
        """A payment the SDK's client signs for `tool`'s PaymentRequired, not sent."""
        probe = await session.call_tool(tool, arguments)
        payload = await self.client.create_payment_payload(PaymentRequired.model_validate(probe.structuredContent))
        return payload.model_dump(by_alias=True)

    def usdc(self) -> int:
        return self.stack.contracts.usdc.balance_of(self.account.address)

    def eth(self) -> int:
        return self.stack.w3.eth.get_balance(self.account.address)

    def authorization_used(self, payment: dict) -> bool:
        nonce = bytes.fromhex(payment["payload"]["authorization"]["nonce"].removeprefix("0x"))
        return self.stack.contracts.usdc.token.functions.authorizationState(self.account.address, nonce).call()


def tokens_minted(stack) -> int:
    return stack.contracts.nft.functions.nextTokenId().call()


def text(result) -> str:
    content = result.content if hasattr(result, "content") else []
    return content[0].text if content else ""


def error_of(result) -> str:
    """What a refused x402 call says: the PaymentRequired's `error`."""
    raw = getattr(result, "raw_result", result)
    return raw.structuredContent["error"]


def test_an_agent_pays_usdc_by_x402_and_gets_the_image(stack, server):
    agent = Agent(stack, 7)
    usdc_before, eth_before = agent.usdc(), agent.eth()

    async def scenario():
        async with agent.session(server) as (paying, session):
            probe = await session.call_tool("generate_image_premium", PROMPT)
            return probe, await paying.call_tool("generate_image_premium", PROMPT)

    probe, paid = anyio.run(scenario)
    [offer] = probe.structuredContent["accepts"]
    assert probe.isError and json.loads(probe.content[0].text)["x402/error"]["code"] == 402
    assert offer == {
        "scheme": "exact", "network": f"eip155:{stack.w3.eth.chain_id}", "asset": stack.contracts.usdc.address,
        "amount": "300000", "payTo": stack.deployment.address, "maxTimeoutSeconds": WINDOW,
        "extra": {"name": "USD Coin", "version": "2", "paymentFlow": "upfront", "terms": offer["extra"]["terms"]},
    }  # fmt: skip
    assert "$0.30 in USDC" in probe.structuredContent["error"]

    assert not paid.is_error, text(paid)
    assert paid.payment_made and paid.payment_response.success
    receipt = json.loads(text(paid))
    token_id = receipt["token_id"]
    nft = stack.contracts.nft.functions
    assert paid.payment_response.transaction == receipt["mint_tx"]
    assert paid.payment_response.payer == agent.account.address and paid.payment_response.extra == {"tokenId": token_id}
    assert receipt["token_uri"] == nft.tokenURI(token_id).call() and receipt["aspect_ratio"] == "16:9"
    assert nft.ownerOf(token_id).call() == agent.account.address
    assert stack.w3.eth.get_transaction(receipt["mint_tx"])["from"] == account_key(RELAYER).address
    assert nft.request(token_id).call()[3] == USDC
    assert paid.content[1].mimeType == "image/png"
    assert agent.usdc() == usdc_before - 300_000  # exactly the price, into the escrow
    assert agent.eth() == eth_before  # the agent needs no ETH: the relayer paid the gas


def test_a_replayed_payment_gets_nothing_twice(stack, server):
    agent = Agent(stack, 8)

    async def scenario():
        async with agent.session(server) as (paying, session):
            first = await paying.call_tool("generate_image_basic", PROMPT)
            minted, usdc = tokens_minted(stack), agent.usdc()
            again = await session.call_tool(
                "generate_image_basic", PROMPT, meta={MCP_PAYMENT_META_KEY: agent.payments[0]}
            )
            return first, minted, usdc, again

    first, minted, usdc, again = anyio.run(scenario)
    assert not first.is_error, text(first)
    token_id = json.loads(text(first))["token_id"]
    assert again.isError and f"paid for token {token_id}" in error_of(again)
    assert f"get_image({token_id})" in error_of(again) and len(again.content) == 1  # no receipt, no image
    assert tokens_minted(stack) == minted and agent.usdc() == usdc


def test_a_payment_for_basic_presented_on_the_ultra_tool_is_refused_and_still_pays_for_basic(stack, server):
    agent = Agent(stack, 9)
    usdc_before = agent.usdc()

    async def scenario():
        async with agent.session(server) as (_paying, session):
            basic = await agent.sign_for(session, "generate_image_basic", PROMPT)
            minted = tokens_minted(stack)
            on_ultra = await session.call_tool("generate_image_ultra", PROMPT, meta={MCP_PAYMENT_META_KEY: basic})
            state = minted, tokens_minted(stack), agent.usdc(), agent.authorization_used(basic)
            on_basic = await session.call_tool("generate_image_basic", PROMPT, meta={MCP_PAYMENT_META_KEY: basic})
            return on_ultra, state, on_basic

    on_ultra, (minted, minted_after, usdc, used), on_basic = anyio.run(scenario)
    assert on_ultra.isError and "made for another call" in error_of(on_ultra)
    assert on_ultra.structuredContent["accepts"][0]["amount"] == "800000"
    assert minted_after == minted and usdc == usdc_before and not used  # nothing sent, nothing charged
    assert not on_basic.isError, text(on_basic)
    assert agent.usdc() == usdc_before - 100_000


def test_a_bad_signature_is_refused_and_charges_nothing(stack, server):
    agent, other = Agent(stack, 6), Agent(stack, 5)
    before = other.usdc(), agent.usdc()

    async def scenario():
        async with agent.session(server) as (_paying, session):
            payment = await agent.sign_for(session, "generate_image_basic", PROMPT)
            payment["payload"]["authorization"]["from"] = other.account.address  # the agent's signature, another payer
            minted = tokens_minted(stack)
            return minted, await session.call_tool("generate_image_basic", PROMPT, meta={MCP_PAYMENT_META_KEY: payment})

    minted, result = anyio.run(scenario)
    assert result.isError and "signature is not" in error_of(result) and "nothing was charged" in error_of(result)
    assert tokens_minted(stack) == minted and (other.usdc(), agent.usdc()) == before


def test_a_balance_too_low_is_refused_and_charges_nothing(stack, server):
    agent = Agent(stack, POOR)  # holds ETH, no USDC

    async def scenario():
        async with agent.session(server) as (paying, _session):
            minted = tokens_minted(stack)
            return minted, await paying.call_tool("generate_image_basic", PROMPT)

    minted, result = anyio.run(scenario)
    assert result.is_error and result.payment_made and result.payment_response is None
    assert "holds $0.00 USDC, the price is $0.10" in error_of(result)
    assert tokens_minted(stack) == minted and not agent.authorization_used(agent.payments[0])


def test_a_relayer_out_of_gas_money_leaves_the_authorization_unused(stack, tmp_path):
    agent = Agent(stack, 4)
    relayer = account_key(BROKE_RELAYER).address
    stack.rpc("anvil_setBalance", relayer, hex(10**9))  # 1 gwei: not enough for one mint's gas
    config = front_config(stack, tmp_path / "front.toml", relayer=f"TEST::{BROKE_RELAYER}", x402_window=WINDOW)

    async def scenario(server):
        async with agent.session(server) as (paying, session):
            refused = await paying.call_tool("generate_image_basic", PROMPT)
            state = agent.usdc(), agent.authorization_used(agent.payments[0])
            stack.rpc("anvil_setBalance", relayer, hex(10**18))
            again = await session.call_tool("generate_image_basic", PROMPT,
                                            meta={MCP_PAYMENT_META_KEY: agent.payments[0]})  # fmt: skip
            return refused, state, again

    usdc_before = agent.usdc()
    with hosted_server(config) as server:
        refused, (usdc, used), again = anyio.run(scenario, server)
        log = server.log.read_text()
    error = error_of(refused)
    assert refused.is_error and "\n" not in error
    assert f"relayer {relayer} has 0.000000001 ETH" in error and "stays unused and nothing was charged" in error
    assert refused.payment_response.success is False and refused.payment_response.error_reason == "insufficient_funds"
    assert usdc == usdc_before and not used
    assert len([line for line in log.splitlines() if "relayer out of gas money" in line]) == 1
    assert not again.isError, text(again)  # the same authorization, never submitted, pays once there is gas money
    assert agent.usdc() == usdc_before - 100_000


def test_a_settlement_that_reverts_charges_nothing_and_says_so(stack, server):
    agent = Agent(stack, 3)
    stack.rpc("evm_setAutomine", False)
    try:
        result = anyio.run(call_while_pending, agent, server, lambda tx: drain(stack, agent))
    finally:
        stack.rpc("evm_setAutomine", True)
    error = error_of(result)
    assert result.is_error and "the mint reverted in tx" in error and "transfer amount exceeds balance" in error
    assert "your authorization is unused on USDC, so nothing was charged" in error
    assert result.payment_response.success is False and result.payment_response.transaction
    assert not agent.authorization_used(agent.payments[0])


def test_a_lost_settlement_is_sent_again_and_pays_once(stack, server):
    agent = Agent(stack, 2)
    usdc_before, minted = agent.usdc(), tokens_minted(stack)

    def drop(tx_hash: str) -> None:
        stack.rpc("anvil_dropTransaction", tx_hash)
        assert stack.rpc("eth_getTransactionByHash", tx_hash) is None
        deadline = time.monotonic() + 15
        while stack.rpc("eth_getTransactionByHash", tx_hash) is None:  # until the relayer broadcasts it again
            assert time.monotonic() < deadline, "the lost mint was not broadcast again"
            time.sleep(0.1)

    stack.rpc("evm_setAutomine", False)
    try:
        result = anyio.run(call_while_pending, agent, server, drop)
    finally:
        stack.rpc("evm_setAutomine", True)
    assert not result.is_error, text(result)
    assert agent.usdc() == usdc_before - 100_000 and tokens_minted(stack) == minted + 1
    assert result.payment_response.transaction == json.loads(text(result))["mint_tx"]


def test_a_restart_between_settlement_and_delivery_then_get_image_answers(stack, tmp_path):
    agent = Agent(stack, 8)
    config = front_config(stack, tmp_path / "front.toml", relayer=f"TEST::{RELAYER}", x402_window=WINDOW)
    logs = LogLog()

    async def first(server):
        async with agent.session(server, logs) as (paying, _session), anyio.create_task_group() as group:
            group.start_soon(paying.call_tool, "generate_image_basic", PROMPT)
            with anyio.fail_after(60):
                while not any(PAID.search(m) for m in logs.messages):
                    await anyio.sleep(0.05)
            group.cancel_scope.cancel()

    async def second(server, token_id: int):
        async with agent.session(server) as (_paying, session):
            replay = await session.call_tool(
                "generate_image_basic", PROMPT, meta={MCP_PAYMENT_META_KEY: agent.payments[0]}
            )
            with anyio.fail_after(60):
                while True:
                    result = await session.call_tool("get_image", {"token_id": token_id})
                    if len(result.content) == 3 or result.isError:
                        return replay, result
                    await anyio.sleep(0.3)

    stack.daemon.send_signal(signal.SIGSTOP)  # the oracle "works" while the server restarts
    try:
        with hosted_server(config) as server:
            anyio.run(first, server)
    finally:
        stack.daemon.send_signal(signal.SIGCONT)
    token_id = int(next(PAID.search(m) for m in logs.messages if PAID.search(m))[1])
    with hosted_server(config) as server:
        replay, result = anyio.run(second, server, token_id)
    assert not result.isError, text(result)
    assert json.loads(text(result))["token_id"] == token_id and result.content[1].mimeType == "image/png"
    assert replay.isError and f"paid for token {token_id}" in error_of(replay)


def test_paid_but_no_image_before_the_deadline_says_it_paid_and_names_the_refund(project, ipfs, tmp_path):
    logs = LogLog()
    with local_stack(project, ipfs, tmp_path, model=None) as chain:  # no oracle: the deadline will pass
        agent = Agent(chain, 7)
        usdc_before = agent.usdc()
        config = front_config(chain, tmp_path / "front.toml", relayer=f"TEST::{RELAYER}", x402_window=WINDOW)

        async def scenario(server):
            async with agent.session(server, logs) as (paying, _session), anyio.create_task_group() as group:
                outcome = {}

                async def call():
                    outcome["result"] = await paying.call_tool("generate_image_basic", PROMPT)

                group.start_soon(call)
                with anyio.fail_after(60):
                    while not any(PAID.search(m) for m in logs.messages):
                        await anyio.sleep(0.05)
                chain.advance(chain.contracts.nft.functions.timeout().call() + 5)
                with anyio.fail_after(60):
                    while "result" not in outcome:
                        await anyio.sleep(0.05)
            return outcome["result"]

        with hosted_server(config) as server:
            result = anyio.run(scenario, server)
        paid_usdc = agent.usdc()
        token_id = result.payment_response.extra["tokenId"]
        chain.deployment.send(account_key(20), chain.contracts.nft.functions.refund(token_id))  # anyone may send it
        assert agent.usdc() == usdc_before
    assert result.is_error and result.payment_response.success
    assert text(result).startswith(f"paid: token {token_id} minted to {agent.account.address}")
    assert f"refund({token_id})" in text(result) and "0.1 USDC" in text(result)
    assert paid_usdc == usdc_before - 100_000


def test_an_expired_authorization_is_refused_and_charges_nothing(stack, server):
    """Last in this module: it moves the chain's clock past every authorization signed now."""
    agent = Agent(stack, 5)

    async def scenario():
        async with agent.session(server) as (_paying, session):
            payment = await agent.sign_for(session, "generate_image_basic", PROMPT)
            stack.advance(WINDOW + 60)
            minted = tokens_minted(stack)
            return minted, await session.call_tool("generate_image_basic", PROMPT, meta={MCP_PAYMENT_META_KEY: payment})

    usdc_before = agent.usdc()
    minted, result = anyio.run(scenario)
    assert result.isError and "the authorization expired at" in error_of(result)
    assert "nothing was charged" in error_of(result)
    assert tokens_minted(stack) == minted and agent.usdc() == usdc_before


# -- a paid call whose mint waits in the mempool while the test acts (automine off) --------------------------


async def call_while_pending(agent: Agent, server, meanwhile):
    """The agent's paid call; once the relayer's mint is pending, `meanwhile(tx_hash)` runs, then blocks are mined
    until the call answers."""
    stack, outcome = agent.stack, {}
    relayer = account_key(RELAYER).address
    async with agent.session(server) as (paying, _session), anyio.create_task_group() as group:

        async def call():
            outcome["result"] = await paying.call_tool("generate_image_basic", PROMPT)

        group.start_soon(call)
        with anyio.fail_after(30):
            while stack.w3.eth.get_transaction_count(relayer, "pending") == stack.w3.eth.get_transaction_count(relayer):
                await anyio.sleep(0.05)
        [tx_hash] = pending_from(stack, relayer)
        await anyio.to_thread.run_sync(meanwhile, tx_hash)
        with anyio.fail_after(90):
            while "result" not in outcome:
                stack.rpc("evm_mine")
                await anyio.sleep(0.3)
    return outcome["result"]


def pending_from(stack, address: str) -> list[str]:
    pool = stack.rpc("txpool_content")["pending"]
    entries = next((txs for sender, txs in pool.items() if sender.lower() == address.lower()), {})
    return [tx["hash"] for tx in entries.values()]


def drain(stack, agent: Agent) -> None:
    """The buyer sends all its USDC away with a tip far above the relayer's: the next block takes it first."""
    w3, buyer = stack.w3, agent.account
    call = stack.contracts.usdc.token.functions.transfer(account_key(21).address, agent.usdc())
    tx = call.build_transaction({"from": buyer.address, "nonce": w3.eth.get_transaction_count(buyer.address),
                                 "maxPriorityFeePerGas": 100 * 10**9, "maxFeePerGas": 200 * 10**9})  # fmt: skip
    w3.eth.send_raw_transaction(buyer.sign_transaction(tx).raw_transaction)
