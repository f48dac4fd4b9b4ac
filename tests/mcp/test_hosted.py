"""Hosted mode over streamable HTTP: the payment link, its pay page in a real headless Chromium with an injected
wallet (the delivered page: the image first with a download link, audited by axe-core), and a payment tied to
exactly one call (terms, reuse, expiry)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import anyio
import httpx

from genim_mcp.calldata import mint_calldata
from genim_mcp.pricing import max_value
from genim_mcp.terms import image_terms
from genim_mcp.units import eth_text
from tests.mcp.browser import audit, wallet_page
from tests.mcp.conftest import (
    MARGIN_BPS,
    ProgressLog,
    front_config,
    hosted_server,
    http_session,
    payment_urls,
    send_tx,
)
from tests.services import account_key

BUYER = 10  # the test wallet's account (anvil keeps it unlocked)
STATE_SHOTS = Path(os.environ["GENIM_MCP_STATE_SHOTS"]) if os.environ.get("GENIM_MCP_STATE_SHOTS") else None
OUTSIDER = 11


def test_pay_page_in_chromium_pays_and_the_tool_returns_the_image(stack, tmp_path):
    config = front_config(stack, tmp_path / "front.toml")
    buyer = account_key(BUYER).address
    chain_id = stack.w3.eth.chain_id

    async def scenario(server):
        async with http_session(server) as session, anyio.create_task_group() as group:
            progress, outcome = ProgressLog(), {}

            async def call():
                outcome["result"] = await session.call_tool(
                    "generate_image_basic",
                    {"prompt": "a lighthouse at dawn", "aspect_ratio": "16:9", "style": "artistic"},
                    progress_callback=progress,
                )

            group.start_soon(call)
            [url] = await payment_urls(progress)
            async with wallet_page(stack.url, chain_id, buyer, audited=True) as page:
                await page.goto(url)
                await page.wait_for_selector("#pay:not([disabled])")
                names = ("prompt", "tier", "aspect", "price-eth", "price-usd", "margin", "chain", "contract")
                shown = {name: await page.text_content(f"#{name}") for name in names}
                wei = stack.contracts.nft.functions.priceInWei(0).call()  # what the page shows, as the contract says
                assert await page.locator("#qr").evaluate("img => img.complete && img.naturalWidth > 0")
                await page.screenshot(path=str(tmp_path / "pay-page.png"), full_page=True)
                # The page reports the hash its wallet returned (so a reverted mint is reported as such).
                async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/mint")) as posted:
                    await page.click("#pay")
                reported = json.loads((await posted.value).post_data)["tx"]
                await page.wait_for_selector("#result:not([hidden]) img", timeout=60_000)
                assert await page.locator("#image").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
                delivered = await page.evaluate("""() => ({
                  first: document.querySelector("main > section:not([hidden])").id,
                  download: document.getElementById("download").getAttribute("href"),
                  name: document.getElementById("download").getAttribute("download"),
                  gateway: document.getElementById("gateway-link").href,
                  ipfs: [...document.querySelectorAll("a")].filter(a => a.href.startsWith("ipfs:")).length,
                  title: document.title,
                })""")
                png = await page.evaluate("href => fetch(href).then(r => r.arrayBuffer()).then(b => b.byteLength)",
                                          delivered["download"])  # fmt: skip
                calls = await page.evaluate("window.__walletCalls.map(c => c.method)")
                sent = await page.evaluate(
                    "window.__walletCalls.find(c => c.method === 'eth_sendTransaction').params[0]"
                )
                added = await page.evaluate(
                    "window.__walletCalls.find(c => c.method === 'wallet_addEthereumChain').params[0]"
                )
                await page.screenshot(path=str(tmp_path / "pay-page-done.png"), full_page=True)
                await audit(page, "delivered", STATE_SHOTS)
            with anyio.fail_after(60):
                while "result" not in outcome:
                    await anyio.sleep(0.05)
            return url, shown, wei, calls, sent, added, reported, outcome["result"], delivered, png

    with hosted_server(config) as server:
        url, shown, wei, calls, sent, added, reported, result, delivered, png = anyio.run(scenario, server)
    assert url.startswith(server.url + "/pay/")
    assert shown["prompt"] == "a lighthouse at dawn, artistic style" and shown["aspect"] == "16:9"
    # Dollars first, as price(0) says; then the ETH amount priceInWei(0) gives now, at the rate it implies.
    assert stack.contracts.nft.functions.price(0).call() == 100_000 and shown["price-usd"] == "$0.10"
    assert shown["price-eth"] == f"(about {eth_text(wei)} ETH at $3,000 per ETH)", shown
    assert "returns the rest in the same transaction" in shown["margin"] and "fees are extra" in shown["margin"]
    # The wallet sends the price plus the margin; the contract charged priceInWei and returned the rest.
    assert int(sent["value"], 16) == max_value(wei, MARGIN_BPS)
    assert wei < int(sent["value"], 16) <= wei * (10_000 + MARGIN_BPS) // 10_000 + 10**9
    assert shown["contract"] == stack.deployment.address and str(chain_id) in shown["chain"]
    assert calls[:5] == ["eth_requestAccounts", "eth_chainId", "wallet_switchEthereumChain",
                         "wallet_addEthereumChain", "eth_sendTransaction"]  # fmt: skip
    assert added["chainId"] == hex(chain_id) and added["rpcUrls"] == [stack.url]
    assert not result.isError, result.content[0].text
    receipt = json.loads(result.content[0].text)
    assert stack.w3.eth.get_transaction(receipt["mint_tx"])["from"] == buyer and receipt["mint_tx"] == reported
    assert stack.deployment.nft.functions.request(receipt["token_id"]).call()[5] == wei  # the escrow
    assert receipt["token_uri"] == stack.deployment.nft.functions.tokenURI(receipt["token_id"]).call()
    # The image comes first, with a download link for the PNG (this server's own copy) and an http gateway link.
    token_id = receipt["token_id"]
    assert delivered["first"] == "result" and delivered["title"] == "Your image · GenImNFT", delivered
    assert delivered["download"] == f"/images/{token_id}.png" and delivered["name"] == f"genimnft-{token_id}.png"
    assert delivered["gateway"].startswith(stack.ipfs.gateway_url) and delivered["ipfs"] == 0
    assert png > 0
    if folder := os.environ.get("GENIM_MCP_SCREENSHOTS"):  # the README's pictures: docs/
        for name in ("pay-page.png", "pay-page-done.png"):
            shutil.copy(tmp_path / name, Path(folder) / f"mcp-{name}")


def test_a_payment_pays_for_exactly_one_call(stack, tmp_path):
    """A mint of another tier, aspect or prompt tagged for a call fails that call; one untagged mint of the exact
    terms pays neither of two identical calls (both links expire, each naming that token); neither reuses the
    other's link."""
    config = front_config(stack, tmp_path / "front.toml", payment_ttl=8)
    terms = image_terms(0, "a blue whale", "1:1", "photorealistic")
    contracts = stack.contracts
    epoch = contracts.oracle_epoch()
    value = [max_value(contracts.price_in_wei(tier), MARGIN_BPS) for tier in range(3)]
    wrong = {
        "tier": (mint_calldata(image_terms(1, "a blue whale", "1:1", "photorealistic"), epoch), value[1]),
        "aspect": (mint_calldata(image_terms(0, "a blue whale", "4:3", "photorealistic"), epoch), value[0]),
        "prompt": (mint_calldata(image_terms(0, "a blue whales", "1:1", "photorealistic"), epoch), value[0]),
    }

    def send_mint(data: bytes, value: int) -> None:
        assert send_tx(stack, OUTSIDER, data, value)["status"] == 1

    async def mismatched(session, data: bytes, value: int):
        progress, outcome = ProgressLog(), {}
        async with anyio.create_task_group() as group:

            async def call():
                outcome["result"] = await session.call_tool("generate_image_basic", {"prompt": "a blue whale"},
                                                            progress_callback=progress)  # fmt: skip

            group.start_soon(call)
            [url] = await payment_urls(progress)
            tag = bytes.fromhex(url.rsplit("/", 1)[1])
            await anyio.to_thread.run_sync(lambda: send_mint(data + tag, value))
        return outcome["result"]

    async def twins(session):
        progress = [ProgressLog(), ProgressLog()]
        results = {}
        async with anyio.create_task_group() as group:
            for i in range(2):

                async def call(i=i):
                    results[i] = await session.call_tool("generate_image_basic", {"prompt": "a blue whale"},
                                                         progress_callback=progress[i])  # fmt: skip

                group.start_soon(call)
                await payment_urls(progress[i])
            await anyio.sleep(0.5)  # both orders are older than the next block
            await anyio.to_thread.run_sync(lambda: send_mint(mint_calldata(terms, epoch), value[0]))
        return results, [p.payment_url() for p in progress]

    async def scenario(server):
        async with http_session(server) as session:
            refused = {kind: await mismatched(session, data, value) for kind, (data, value) in wrong.items()}
            results, urls = await twins(session)
        return refused, results, urls

    with hosted_server(config) as server:
        refused, results, urls = anyio.run(scenario, server)
    for kind, result in refused.items():
        assert result.isError, kind
        assert "does not pay for this call" in result.content[0].text, (kind, result.content[0].text)
    assert "is for tier 1" in refused["tier"].content[0].text
    assert "another prompt" in refused["prompt"].content[0].text
    assert urls[0] != urls[1]
    for result in results.values():
        assert result.isError and "expired" in result.content[0].text and "arrived as token" in result.content[0].text
        assert "nothing was charged" not in result.content[0].text
    orders = sqlite3.connect(tmp_path / "front-state" / "front.sqlite3").execute(
        "SELECT state, count(*) FROM orders GROUP BY state"
    )
    assert dict(orders.fetchall()) == {"failed": 3, "expired": 2}


def test_lone_surrogates_and_invalid_utf8_are_refused_on_the_wire(stack, tmp_path):
    config = front_config(stack, tmp_path / "front.toml")
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    call = (
        '{"jsonrpc":"2.0","id":2,"method":"tools/call",'
        '"params":{"name":"generate_image_basic","arguments":{"prompt":%s}}}'
    )

    with hosted_server(config) as server, httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        reply = client.post("/mcp", json=init)
        session = {"mcp-session-id": reply.headers["mcp-session-id"]}
        client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        answers = [
            client.post("/mcp", content=(call % '"a \\ud800 cat"').encode(), headers=session),
            client.post("/mcp", content=(call % '"a ').encode() + b"\xff\xfe" + b' cat"}}}', headers=session),
        ]
    surrogate, invalid_utf8 = (answer.text for answer in answers)
    # The transport decodes "\\ud800" into a lone surrogate: the guard refuses it as a prompt.
    assert '"isError":true' in surrogate and "lone surrogate" in surrogate and "nothing was paid" in surrogate
    # Bytes that are not UTF-8 never become a tool call: the transport answers a JSON-RPC error.
    assert '"error"' in invalid_utf8 and '"result"' not in invalid_utf8, invalid_utf8
    orders = sqlite3.connect(tmp_path / "front-state" / "front.sqlite3").execute("SELECT count(*) FROM orders")
    assert orders.fetchone()[0] == 0
