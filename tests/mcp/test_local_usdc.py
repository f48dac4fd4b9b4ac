"""Local mode on USDC (`local_rail = "usdc"`) over stdio: the configured account pays each call by an x402
authorization it signs itself (the SDK's `exact` EVM scheme), settled by mintWithAuthorization, under caps in US
dollars that survive a restart. A real MCP client, anvil with Circle's FiatTokenV2_2, js-ipfs and the oracle daemon
with the tiny model."""

from __future__ import annotations

import base64
import io
import json
import re
import sqlite3

import anyio
from PIL import Image
from x402.mcp import MCP_PAYMENT_RESPONSE_META_KEY

from tests.mcp.conftest import LogLog, front_config, gas_cost, json_content, nonce, stdio_session
from tests.services import account_key

PAYER, CAPPED, RELAYER = 7, 8, 16
PREMIUM = 300_000  # price(1) in USDC units: $0.30
ASSET_USDC = 1


def usdc_config(stack, tmp_path, payer: int, **overrides: object):
    stack.contracts.fund_usdc([account_key(payer).address])
    return front_config(stack, tmp_path / "front.toml", account=f"TEST::{payer}", local_rail="usdc", **overrides)


def balances(stack, payer: int) -> tuple[int, int]:
    address = account_key(payer).address
    return stack.contracts.usdc.balance_of(address), stack.w3.eth.get_balance(address)


def payments_recorded(tmp_path) -> int:
    with sqlite3.connect(tmp_path / "front-state" / "front.sqlite3") as db:
        return db.execute("SELECT count(*) FROM x402_payments").fetchone()[0]


def test_local_usdc_pays_by_x402_from_the_account_and_returns_the_image(stack, tmp_path):
    config = usdc_config(stack, tmp_path, PAYER, max_usd_per_call="1.00", max_usd_per_day="5.00")
    usdc_before, eth_before = balances(stack, PAYER)
    logs = LogLog()

    async def scenario():
        async with stdio_session(config, logs) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            result = await session.call_tool(
                "generate_image_premium", {"prompt": "a heron at dawn", "aspect_ratio": "16:9", "style": "cartoon"}
            )
            mine = json_content(await session.call_tool("my_tokens", {}))
            return tools, result, mine

    tools, result, mine = anyio.run(scenario)
    description = tools["generate_image_premium"].description or ""
    assert "spends the configured account's USDC" in description and "account's ETH" not in description
    assert not re.search(r"\$\d|\d ETH|\d s\b", description)  # no figures that go stale
    assert not result.isError, result.content[0].text
    text, image, _link = result.content
    receipt = json.loads(text.text)
    token_id, nft = receipt["token_id"], stack.deployment.nft
    assert receipt["token_uri"] == nft.functions.tokenURI(token_id).call()
    assert receipt["prompt"] == "a heron at dawn, cartoon style" and receipt["tier"] == 1
    png = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert image.mimeType == "image/png" and png.width > png.height  # 16:9

    settlement = result.meta[MCP_PAYMENT_RESPONSE_META_KEY]
    assert settlement["success"] is True and settlement["transaction"] == receipt["mint_tx"]
    assert settlement["payer"] == account_key(PAYER).address and settlement["amount"] == str(PREMIUM)
    mint = stack.w3.eth.get_transaction(receipt["mint_tx"])
    assert mint["from"] == account_key(PAYER).address and mint["value"] == 0  # it relays its own authorization
    request = nft.functions.request(token_id).call()
    assert request[3] == ASSET_USDC and request[5] == PREMIUM  # the escrow is USDC, exactly the price
    usdc_after, eth_after = balances(stack, PAYER)
    assert usdc_before - usdc_after == PREMIUM
    assert eth_before - eth_after == gas_cost(stack.w3.eth.get_transaction_receipt(receipt["mint_tx"]))  # gas only
    assert any(f"paying $0.30 in USDC from the configured account {account_key(PAYER).address}" in m
               for m in logs.messages), logs.messages  # fmt: skip
    assert [t["token_id"] for t in mine["tokens"]] == [token_id]


def test_local_usdc_caps_refuse_before_signing_and_count_across_a_restart(stack, tmp_path):
    config = usdc_config(stack, tmp_path, CAPPED, relayer=f"TEST::{RELAYER}", max_usd_per_call="0.30",
                         max_usd_per_day="0.50")  # fmt: skip
    usdc_before, eth_before = balances(stack, CAPPED)
    first_logs, later_logs = LogLog(), LogLog()

    async def scenario():
        async with stdio_session(config, first_logs) as session:
            first = await session.call_tool("generate_image_premium", {"prompt": "a small boat"})
            paid_usdc = balances(stack, CAPPED)[0]
            over_call = await session.call_tool("generate_image_ultra", {"prompt": "a small boat"})
        async with stdio_session(config, later_logs) as session:  # a restart: the day's count is in the ledger
            over_day = await session.call_tool("generate_image_premium", {"prompt": "a small boat"})
        return first, paid_usdc, over_call, over_day

    minted_before = stack.contracts.nft.functions.nextTokenId().call()
    first, paid_usdc, over_call, over_day = anyio.run(scenario)
    assert not first.isError, first.content[0].text
    assert usdc_before - paid_usdc == PREMIUM
    assert over_call.isError and "over the per-call cap of $0.30" in over_call.content[0].text
    assert over_day.isError and "over the per-day cap of $0.50 ($0.30 spent or pending)" in over_day.content[0].text
    assert "nothing was paid" in over_call.content[0].text and "nothing was paid" in over_day.content[0].text
    # Nothing signed for the refused calls: one payment on record, one token, no more USDC gone; the relayer paid
    # the gas, so the account spent no ETH and sent no transaction.
    assert payments_recorded(tmp_path) == 1
    assert sum("paying $" in m for m in first_logs.messages + later_logs.messages) == 1
    assert stack.contracts.nft.functions.nextTokenId().call() == minted_before + 1
    assert balances(stack, CAPPED) == (paid_usdc, eth_before)
    assert nonce(stack, CAPPED) == 0
