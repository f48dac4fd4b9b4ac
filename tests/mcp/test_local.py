"""Local mode over stdio: the buyer's own key pays by minting, under caps; a real MCP client, anvil, js-ipfs and
the oracle daemon with the tiny model."""

from __future__ import annotations

import base64
import io
import json

import anyio
from PIL import Image

from genim_mcp.pricing import max_value
from genim_mcp.units import eth_text
from tests.mcp.conftest import MARGIN_BPS, ProgressLog, front_config, json_content, nonce, stdio_session
from tests.services import account_key

PAYER = 5


def test_local_mode_pays_and_returns_the_image(stack, tmp_path):
    config = front_config(stack, tmp_path / "front.toml")

    async def scenario():
        async with stdio_session(config) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert tools == {"generate_image_basic", "generate_image_premium", "generate_image_ultra", "list_tiers",
                             "get_image", "refund_status", "my_tokens"}  # fmt: skip
            tiers = json_content(await session.call_tool("list_tiers", {}))
            progress = ProgressLog()
            result = await session.call_tool(
                "generate_image_premium",
                {"prompt": "a red fox in the snow", "aspect_ratio": "16:9", "style": "cartoon"},
                progress_callback=progress,
            )
            refund = json_content(
                await session.call_tool("refund_status", {"token_id": json_content(result)["token_id"]})
            )
            return tiers, progress, result, refund

    nft = stack.deployment.nft
    wei = [nft.functions.priceInWei(tier).call() for tier in range(3)]
    tiers, progress, result, refund = anyio.run(scenario)
    # Dollars as price(tier) says, first; the ETH amount is priceInWei(tier); a mint sends it plus the margin.
    assert [t["price_usd"] for t in tiers["tiers"]] == ["0.1", "0.3", "0.8"]
    assert [int(nft.functions.price(tier).call()) for tier in range(3)] == [100_000, 300_000, 800_000]
    assert [t["price_wei"] for t in tiers["tiers"]] == [str(w) for w in wei]
    assert [t["mint_sends_wei"] for t in tiers["tiers"]] == [str(max_value(w, MARGIN_BPS)) for w in wei]
    assert tiers["tiers"][1]["price"] == f"$0.30 ({eth_text(wei[1])} ETH at $3,000/ETH)"
    assert tiers["eth_payments"] == "available" and tiers["oracle_epoch"] == stack.contracts.oracle_epoch()

    assert not result.isError, result.content[0].text
    text, image, link = result.content
    receipt = json.loads(text.text)
    token_id = receipt["token_id"]
    assert receipt["token_uri"] == nft.functions.tokenURI(token_id).call()
    assert receipt["prompt"] == "a red fox in the snow, cartoon style"
    assert receipt["aspect_ratio"] == "16:9" and receipt["tier"] == 1
    assert link.type == "resource_link" and str(link.uri) == receipt["image"] and receipt["image"].startswith("ipfs://")
    assert receipt["gateway_url"].endswith("/ipfs/" + receipt["image"].removeprefix("ipfs://"))
    mint = stack.w3.eth.get_transaction(receipt["mint_tx"])
    assert mint["from"] == account_key(PAYER).address and mint["value"] == max_value(wei[1], MARGIN_BPS)
    assert nft.functions.request(token_id).call()[5] == wei[1]  # charged priceInWei; the margin came back
    assert stack.w3.eth.get_transaction(receipt["set_image_tx"])["to"] == stack.deployment.address
    png = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert image.mimeType == "image/png" and png.width > png.height  # 16:9

    later = progress.after_payment()
    values = [value for value, _ in later]
    assert values == sorted(set(values)) and values[0] > 100, values
    assert all(message for _, message in later)
    assert any("paid: token" in m for _, m in later) and any("generating" in m for _, m in later)
    assert refund["status"] == "fulfilled" and refund["refundable"] is False


def test_local_caps_refuse_and_send_nothing(stack, tmp_path):
    premium = max_value(stack.contracts.price_in_wei(1), MARGIN_BPS)  # what a premium mint sends
    config = front_config(stack, tmp_path / "front.toml", account=f"TEST::{PAYER + 1}",
                          max_wei_per_call=premium, max_wei_per_day=premium)  # fmt: skip

    async def scenario():
        async with stdio_session(config) as session:
            first = await session.call_tool("generate_image_premium", {"prompt": "a small boat"})
            sent = nonce(stack, PAYER + 1)
            over_call = await session.call_tool("generate_image_ultra", {"prompt": "a small boat"})
            over_day = await session.call_tool("generate_image_basic", {"prompt": "a small boat"})
            return first, sent, over_call, over_day

    first, sent, over_call, over_day = anyio.run(scenario)
    assert not first.isError, first.content[0].text
    assert sent == 1
    assert over_call.isError and "per-call cap" in over_call.content[0].text
    assert over_day.isError and "per-day cap" in over_day.content[0].text
    assert "nothing was paid" in over_day.content[0].text
    assert nonce(stack, PAYER + 1) == 1
