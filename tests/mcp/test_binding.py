"""A mint settles only the call it provably carries the id of (calldata tag, or the EIP-681 link's value offset),
even after that call's link ran out; a mint without either settles nothing, and open calls of its terms are told
which token it became. Odd token ids get one plain line. Hosted mode over streamable HTTP, real services."""

from __future__ import annotations

import re
import sqlite3

import anyio
import pytest

from genim_mcp.calldata import mint_calldata
from genim_mcp.pricing import max_value
from genim_mcp.store import GWEI
from genim_mcp.terms import image_terms
from tests.mcp.conftest import (
    MARGIN_BPS,
    LogLog,
    ProgressLog,
    front_config,
    hosted_server,
    http_session,
    json_content,
    nonce,
    order_document,
    payment_urls,
    send_tx,
    stdio_session,
)
from tests.mcp.lossy_rpc import lossy_rpc

STRANGER = 12  # pays with a plain mint of the same terms, no id
PHONE = 13  # the buyer, paying with the EIP-681 link in a phone wallet
LATE = 14  # confirms in the wallet after the link ran out
LOCAL_PAYER = 16  # local mode, behind an RPC that loses the answer to its mint's broadcast
CANCELLER = 17  # local mode: cancels the call right after it paid
UNCONFIRMED = 19  # mints just before the link runs out, on a chain that waits for confirmations


def test_only_a_provable_mint_settles_a_call(stack, tmp_path):
    """A opens a call and never pays; a stranger's untagged mint of the same terms pays nobody (A and B are told
    its token); B pays with its own EIP-681 link (no tag, the value offset): B gets the image, A's link expires
    and says which token arrived with its terms."""
    config = front_config(stack, tmp_path / "front.toml", payment_ttl=12)
    prompt = "a phone wallet's lighthouse"
    terms = image_terms(0, prompt, "1:1", "photorealistic")
    contracts = stack.contracts

    async def call(server, progress, logs, outcome, key):
        async with http_session(server, logs) as session:
            outcome[key] = await session.call_tool("generate_image_basic", {"prompt": prompt},
                                                   progress_callback=progress)  # fmt: skip

    async def scenario(server):
        progress, logs, outcome = {k: ProgressLog() for k in "AB"}, {k: LogLog() for k in "AB"}, {}
        async with anyio.create_task_group() as group:
            for key in "AB":
                group.start_soon(call, server, progress[key], logs[key], outcome, key)
                await payment_urls(progress[key])
            await anyio.sleep(0.5)
            plain = max_value(contracts.price_in_wei(0), MARGIN_BPS)
            data = mint_calldata(terms, contracts.oracle_epoch())
            stranger = await anyio.to_thread.run_sync(lambda: send_tx(stack, STRANGER, data, plain))
            with anyio.fail_after(10):
                while not all("arrived as token" in " ".join(logs[k].messages) for k in "AB"):
                    await anyio.sleep(0.1)
            b_doc = order_document(server, progress["B"].payment_url())
            value = int(re.search(r"&value=(\d+)$", b_doc["order"]["eip681"])[1])
            phone = await anyio.to_thread.run_sync(lambda: send_tx(stack, PHONE, data, value))
        a_doc = order_document(server, progress["A"].payment_url())
        return outcome, logs, stranger, phone, value, plain, a_doc

    with hosted_server(config) as server:
        outcome, logs, stranger, phone, value, plain, a_doc = anyio.run(scenario, server)
    stranger_token = stack.contracts.nft.events.ImageRequested().process_receipt(stranger)[0]["args"]["tokenId"]
    phone_event = stack.contracts.nft.events.ImageRequested().process_receipt(phone)[0]["args"]
    # The link's value carries the payment's offset under one gwei in place of the margin's last gwei (never more
    # than the page's mint sends); the contract charged the escrow and returned the rest, so msg.value - escrow
    # names the payment.
    assert plain - GWEI < value < plain and value > stack.contracts.price_in_wei(0)
    assert (value - phone_event["escrow"]) % GWEI == value - (plain - GWEI)
    assert not outcome["B"].isError, outcome["B"].content[0].text
    assert json_content(outcome["B"])["token_id"] == phone_event["tokenId"]
    # A paid nothing: its call ends unpaid, but is told a mint of its terms arrived, and which token it became.
    assert outcome["A"].isError
    text = outcome["A"].content[0].text
    assert f"arrived as token {stranger_token}" in text and f"get_image({stranger_token})" in text, text
    assert "nothing was charged" not in text
    for key in "AB":
        assert any(f"arrived as token {stranger_token}" in m for m in logs[key].messages), logs[key].messages
    assert a_doc["order"]["state"] == "expired"


def test_a_mint_confirmed_after_the_link_expired_still_settles_its_payment(stack, tmp_path):
    config = front_config(stack, tmp_path / "front.toml", payment_ttl=3)

    async def scenario(server):
        progress = ProgressLog()
        async with http_session(server) as session:
            result = await session.call_tool("generate_image_basic", {"prompt": "a late wallet"},
                                             progress_callback=progress)  # fmt: skip
        url = progress.payment_url()
        expired = order_document(server, url)
        # The wallet confirms now, with the mint the page built (tagged for this payment).
        mint = expired["order"]["mint"]
        receipt = await anyio.to_thread.run_sync(
            lambda: send_tx(stack, LATE, bytes.fromhex(mint["data"][2:]), int(mint["value"], 16))
        )
        with anyio.fail_after(15):
            while (document := order_document(server, url))["order"]["state"] != "paid":
                await anyio.sleep(0.2)
        return result, expired, receipt, document

    with hosted_server(config) as server:
        result, expired, receipt, document = anyio.run(scenario, server)
    assert result.isError and expired["order"]["state"] == "expired"
    token_id = stack.contracts.nft.events.ImageRequested().process_receipt(receipt)[0]["args"]["tokenId"]
    assert document["order"]["mint_tx"] == receipt["transactionHash"].to_0x_hex()
    assert document["token"]["token_id"] == token_id, document


def test_a_link_does_not_expire_while_its_mint_waits_for_confirmations(stack, tmp_path):
    """The mint is in a block before the link runs out, but not yet confirmed: the payment stays open (no "nothing
    was charged") until the follower has scanned past it, then the call is paid and returns the image."""
    config = front_config(stack, tmp_path / "front.toml", payment_ttl=3, confirmations=2)

    async def scenario(server):
        progress, outcome = ProgressLog(), {}
        async with http_session(server) as session, anyio.create_task_group() as group:

            async def call():
                outcome["result"] = await session.call_tool("generate_image_basic", {"prompt": "an unconfirmed mint"},
                                                            progress_callback=progress)  # fmt: skip

            group.start_soon(call)
            [url] = await payment_urls(progress)
            mint = order_document(server, url)["order"]["mint"]
            receipt = await anyio.to_thread.run_sync(
                lambda: send_tx(stack, UNCONFIRMED, bytes.fromhex(mint["data"][2:]), int(mint["value"], 16))
            )
            await anyio.sleep(4.5)  # past the link's 3 s
            outcome["state_past_ttl"] = order_document(server, url)["order"]["state"]
            for _ in range(3):
                stack.rpc("evm_mine")
        return outcome, receipt

    with hosted_server(config) as server:
        outcome, receipt = anyio.run(scenario, server)
    assert outcome["state_past_ttl"] == "awaiting"
    result = outcome["result"]
    assert not result.isError, result.content[0].text
    assert json_content(result)["mint_tx"] == receipt["transactionHash"].to_0x_hex()


def test_a_mint_whose_broadcast_answer_was_lost_is_paid_and_counted_against_the_caps(stack, tmp_path):
    """The node takes the local wallet's mint but its answer is lost: the payment is unknown (not failed) and the
    per-day cap counts it while it is (a second call is refused); once the node shows the hash recorded before the
    broadcast, the call returns the token of that very mint."""
    one_mint = max_value(stack.contracts.price_in_wei(0), MARGIN_BPS)
    database = tmp_path / "front-state" / "front.sqlite3"

    def states() -> list[str]:
        if not database.exists():
            return []
        return [state for (state,) in sqlite3.connect(database).execute("SELECT state FROM orders")]

    async def scenario(rpc):
        config = front_config(stack, tmp_path / "front.toml", rpc_uri=rpc.url, account=f"TEST::{LOCAL_PAYER}",
                              max_wei_per_day=one_mint * 3 // 2)  # fmt: skip
        outcome = {}
        async with stdio_session(config) as session, anyio.create_task_group() as group:

            async def first():
                outcome["first"] = await session.call_tool("generate_image_basic", {"prompt": "a flaky node"})

            group.start_soon(first)
            with anyio.fail_after(30):
                while states() != ["unknown"]:
                    await anyio.sleep(0.1)
            outcome["second"] = await session.call_tool("generate_image_basic", {"prompt": "a second flaky node"})
            outcome["while_unknown"] = states()
            rpc.hide_lost = False  # the node shows the mint now; mine it
            stack.rpc("evm_setAutomine", True)
            stack.rpc("evm_mine")
        return outcome

    with lossy_rpc(stack.url) as rpc:
        rpc.hide_lost = True  # the load balancer's node has not seen it
        stack.rpc("evm_setAutomine", False)  # nor has it been mined: the payment stays unknown
        try:
            outcome = anyio.run(scenario, rpc)
        finally:
            stack.rpc("evm_setAutomine", True)
    first, second = outcome["first"], outcome["second"]
    assert second.isError and "per-day cap" in second.content[0].text, second.content[0].text
    assert outcome["while_unknown"] == ["unknown"]  # refused before any row: only the first payment exists
    assert not first.isError, first.content[0].text
    assert rpc.lost == [json_content(first)["mint_tx"]]  # the very mint whose answer was lost
    assert nonce(stack, LOCAL_PAYER) == 1


def test_a_paid_token_whose_call_ended_early_is_found_again(stack, tmp_path):
    """The client cancels right after "paid: token N" and the server stops: the token is not lost. my_tokens
    lists it as paid and not delivered, the next call's answer names it, and get_image finds it by mint hash."""
    config = front_config(stack, tmp_path / "front.toml", account=f"TEST::{CANCELLER}")

    async def cancelled_call():
        async with stdio_session(config) as session, anyio.create_task_group() as group:
            progress = ProgressLog()

            async def call():
                await session.call_tool("generate_image_basic", {"prompt": "a cancelled call"},
                                        progress_callback=progress)  # fmt: skip

            group.start_soon(call)
            with anyio.fail_after(30):
                while not progress.after_payment():
                    await anyio.sleep(0.02)
            group.cancel_scope.cancel()
        return progress.after_payment()[0][1]

    async def later():
        async with stdio_session(config) as session:
            listed = json_content(await session.call_tool("my_tokens", {}))
            next_call = await session.call_tool("generate_image_basic", {"prompt": "the next call"})
            by_hash = await session.call_tool("get_image", {"mint_tx": listed["tokens"][0]["mint_tx"]})
            after = json_content(await session.call_tool("my_tokens", {}))
        return listed, next_call, by_hash, after

    paid_note = anyio.run(cancelled_call)
    token_id = int(re.search(r"token (\d+)", paid_note)[1])
    listed, next_call, by_hash, after = anyio.run(later)
    assert [t["token_id"] for t in listed["tokens"]] == [token_id]
    first = listed["tokens"][0]
    assert first["paid_here_not_delivered"] and first["status"] in ("generating", "image set"), first
    assert not next_call.isError, next_call.content[0].text
    note = next_call.content[-1].text
    assert f"token {token_id} (get_image({token_id}))" in note and "not delivered" in note, note
    assert not by_hash.isError and json_content(by_hash)["token_id"] == token_id
    assert not any(t["paid_here_not_delivered"] for t in after["tokens"]) and len(after["tokens"]) == 2


@pytest.mark.parametrize("tool", ["get_image", "refund_status"])
def test_odd_token_ids_get_one_plain_line(stack, tmp_path, tool):
    config = front_config(stack, tmp_path / "front.toml")

    async def scenario(server):
        async with http_session(server) as session:
            return [await session.call_tool(tool, {"token_id": token_id}) for token_id in (-1, 2**63, 2**255)]

    with hosted_server(config) as server:
        results = anyio.run(scenario, server)
    for result in results:
        text = result.content[0].text
        assert result.isError and "is not a token of this contract" in text and "\n" not in text, text
        assert "ABI" not in text and "SQLite" not in text and text.endswith("nothing was paid")


BAD_ARGUMENTS = [
    ("generate_image_basic", {"prompt": "a cat", "aspect_ratio": "3:2"}, "aspect_ratio must be one of"),
    ("generate_image_basic", {"prompt": "a cat", "style": "noir"}, "style must be one of"),
    ("generate_image_premium", {}, "prompt is missing"),
    ("generate_image_ultra", {"prompt": 5}, "prompt must be text"),
    ("get_image", {"token_id": "seven"}, "token_id must be a whole number"),
    ("get_image", {}, "give either token_id or mint_tx"),
    ("get_image", {"mint_tx": "0x12"}, "is not a transaction hash"),
    ("refund_status", {"token_id": 1.5}, "token_id must be a whole number"),
    ("no_such_tool", {}, "there is no tool 'no_such_tool'"),
]


def test_refusals_are_plain_and_end_alike_and_local_mode_says_it_pays_by_itself(stack, tmp_path):
    """Bad arguments get one plain line per argument (no pydantic text or URLs) ending "nothing was paid"; every
    parameter has its own description; local mode's descriptions and payment text say the account pays by itself."""
    config = front_config(stack, tmp_path / "front.toml", account="TEST::18")

    async def scenario():
        async with stdio_session(config) as session:
            refusals = [await session.call_tool(tool, arguments) for tool, arguments, _ in BAD_ARGUMENTS]
            tools = (await session.list_tools()).tools
            progress = ProgressLog()
            paid = await session.call_tool("generate_image_basic", {"prompt": "words that match"},
                                           progress_callback=progress)  # fmt: skip
        return refusals, tools, progress, paid

    refusals, tools, progress, paid = anyio.run(scenario)
    for (tool, arguments, expected), result in zip(BAD_ARGUMENTS, refusals, strict=True):
        text = result.content[0].text
        assert result.isError and expected in text, (tool, arguments, text)
        assert text.endswith("nothing was paid") and "pydantic" not in text and "\n" not in text, text
    for tool in tools:
        for name, schema in tool.inputSchema.get("properties", {}).items():
            assert schema.get("description"), (tool.name, name)
    described = {tool.name: tool.description for tool in tools}
    assert "my_tokens" in described
    for tier in ("basic", "premium", "ultra"):
        assert "spends the configured account's ETH" in described[f"generate_image_{tier}"]
        assert not re.search(r"\$\d|\d ETH|\d s\b", described[f"generate_image_{tier}"])  # no figures that go stale
    first = progress.notes[0][1]
    assert "by itself" in first and "come back and confirm" not in first and "please pay" not in first, first
    assert "$0.10" in first and not paid.isError


def test_opening_payments_is_rate_limited_per_session_and_address_and_unpaid_rows_are_purged(stack, tmp_path):
    config = front_config(stack, tmp_path / "front.toml", payment_ttl=3, order_retention=1,
                          payments_per_minute_session=2, payments_per_minute_address=3)  # fmt: skip
    database = tmp_path / "front-state" / "front.sqlite3"

    async def calls(server, count: int) -> list:
        async with http_session(server) as session:
            results: dict[int, object] = {}
            async with anyio.create_task_group() as group:
                for i in range(count):

                    async def call(i=i):
                        results[i] = await session.call_tool("generate_image_basic", {"prompt": f"loop {i}"},
                                                             progress_callback=ProgressLog())  # fmt: skip

                    group.start_soon(call)
                    await anyio.sleep(0.3)
            return [results[i] for i in range(count)]

    async def scenario(server):
        first = await calls(server, 3)  # a third payment from one MCP session within the minute
        second = await calls(server, 2)  # another session from the same address: its fourth payment
        with anyio.fail_after(20):
            while sqlite3.connect(database).execute("SELECT count(*) FROM orders").fetchone()[0]:
                await anyio.sleep(0.2)
        return first, second

    with hosted_server(config) as server:
        first, second = anyio.run(scenario, server)
    texts = [result.content[0].text for result in first + second]
    assert all(result.isError for result in first + second), texts
    assert [("from this MCP session" in t, "from this address" in t) for t in texts] == [
        (False, False),
        (False, False),
        (True, False),
        (False, False),
        (False, True),
    ], texts
    assert texts[2].endswith("nothing was paid") and "at most 2 a minute" in texts[2]
