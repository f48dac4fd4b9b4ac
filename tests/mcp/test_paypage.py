"""The pay page for a first-time buyer, in headless Debian Chromium: every state it has (waiting, sent, paid and
generating, refundable, refunded, failed, expired, not found) passes axe-core at 1280 and 390 px without scrolling
sideways, and leads somewhere in words a buyer knows. A sent mint is a step that survives a reload and Pay cannot
send a second; a phone without a wallet gets the error next to the button and a link its wallet app opens; the
page works without JavaScript; its live regions speak only on change and focus never falls to <body>. The routes
check the Host header, keep the payment id private, 404 odd token ids, and render the QR code off the event loop.
The delivered state (it needs the oracle) is audited in test_hosted.py. No oracle runs here: the deadline passes."""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from playwright.async_api import Page

from genim_mcp.calldata import mint_calldata
from genim_mcp.pricing import max_value
from genim_mcp.terms import image_terms
from tests.mcp.browser import Wallet, audit, browser_page
from tests.mcp.conftest import (
    MARGIN_BPS,
    HostedServer,
    ProgressLog,
    Stack,
    front_config,
    hosted_server,
    http_session,
    local_stack,
    order_document,
    payment_urls,
    send_tx,
)
from tests.services import account_key

BUYER = 10
OUTSIDER = 11
CONFIRMATIONS = 2  # so that a sent mint waits, as on a real chain
SHOTS = Path(os.environ["GENIM_MCP_STATE_SHOTS"]) if os.environ.get("GENIM_MCP_STATE_SHOTS") else None
PLAIN_WORDS_HIDE = ("escrow", "oracle", "tokenURI", "EIP-681", "tier 0", "Chainlink", "mint", "get_image")


@pytest.fixture(scope="module")
def quiet(project, ipfs, tmp_path_factory) -> Iterator[Stack]:
    with local_stack(project, ipfs, tmp_path_factory.mktemp("paypage"), model=None) as chain:
        yield chain


@pytest.fixture(scope="module")
def server(quiet, tmp_path_factory) -> Iterator[HostedServer]:
    path = tmp_path_factory.mktemp("front") / "front.toml"
    with hosted_server(front_config(quiet, path, confirmations=CONFIRMATIONS, payment_ttl=300)) as running:
        yield running


@contextlib.asynccontextmanager
async def open_payments(server: HostedServer, *prompts: str) -> AsyncIterator[list[str]]:
    """One tool call per prompt, each waiting for its payment while the test runs; their payment links."""
    async with http_session(server) as session, anyio.create_task_group() as group:
        urls = []
        for prompt in prompts:
            progress = ProgressLog()

            async def call(prompt: str = prompt, progress: ProgressLog = progress) -> None:
                await session.call_tool("generate_image_basic", {"prompt": prompt}, progress_callback=progress)

            group.start_soon(call)
            [url] = await payment_urls(progress)
            urls.append(url)
        yield urls
        group.cancel_scope.cancel()


def mine(chain: Stack, blocks: int = CONFIRMATIONS) -> None:
    for _ in range(blocks):
        chain.rpc("evm_mine")


async def current_step(page: Page, label: str, timeout: float = 30) -> None:
    await page.wait_for_selector(f"#steps li[aria-current=step]:text-is('{label}')", timeout=timeout * 1000)


async def step_classes(page: Page) -> list[str]:
    return await page.eval_on_selector_all("#steps li", "items => items.map(li => li.className)")


async def visible_text(page: Page) -> str:
    return await page.inner_text("main")


async def focused(page: Page) -> str:
    return await page.evaluate("() => document.activeElement.id || document.activeElement.tagName")


async def live_region_writes(page: Page, seconds: float) -> int:
    """How many times the status and alert regions changed in `seconds` (the page polls every second)."""
    await page.evaluate("""() => {
      window.__writes = 0;
      const observer = new MutationObserver(records => { window.__writes += records.length; });
      for (const region of document.querySelectorAll("[role=status], [role=alert]")) {
        observer.observe(region, { childList: true, characterData: true, subtree: true });
      }
    }""")
    await page.wait_for_timeout(seconds * 1000)
    return await page.evaluate("() => window.__writes")


def test_a_sent_mint_is_a_step_across_reloads_then_refund_all_in_plain_words(quiet, server):
    """Waiting, sent, generating, refundable and refunded, each audited; the buyer's wallet pays once only."""
    chain_id, buyer = quiet.w3.eth.chain_id, account_key(BUYER).address
    timeout = quiet.deployment.nft.functions.timeout().call()

    async def scenario() -> dict:
        seen: dict = {}
        async with open_payments(server, "a kite over dunes") as [url]:
            wallet = Wallet(quiet.url, chain_id, buyer)
            async with browser_page(wallet, timezone="Asia/Tokyo", audited=True) as page:
                await page.goto(url)
                await page.wait_for_selector("#pay:not([disabled])")
                seen["waiting"] = (await page.title(), await visible_text(page), await page.text_content("#expires"))
                await audit(page, "waiting", SHOTS)
                await page.focus("#pay")
                await page.keyboard.press("Enter")  # keyboard only
                await current_step(page, "Sent")
                seen["sent"] = (await page.title(), await page.text_content("#stage-text"), await focused(page))
                seen["sends"] = await page.evaluate(
                    "() => window.__walletCalls.filter(c => c.method === 'eth_sendTransaction').length"
                )
                await audit(page, "sent", SHOTS)
                await page.reload()
                await current_step(page, "Sent")
                seen["reloaded"] = (await page.is_hidden("#pay"), await page.text_content("#stage-text"))
                # Force Pay back on and press it: the page asks the server first and sends nothing.
                await page.evaluate("() => { const b = document.getElementById('pay'); b.hidden = false; "
                                    "b.disabled = false; b.click(); }")  # fmt: skip
                await page.wait_for_timeout(1500)
                seen["resends"] = await page.evaluate(
                    "() => window.__walletCalls.filter(c => c.method === 'eth_sendTransaction').length"
                )
                seen["recorded"] = order_document(server, url)["order"]["mint_tx"]
                mine(quiet)
                await current_step(page, "Making")
                seen["generating"] = (await page.title(), await page.text_content("#deadline"))
                seen["writes"] = await live_region_writes(page, 3)
                await audit(page, "generating", SHOTS)
                quiet.advance(timeout + 5)
                quiet.contracts.heartbeat()  # the feed posts again, as Chainlink's would: ETH mints stay open
                mine(quiet)
                await current_step(page, "Refund")
                seen["refundable"] = (await step_classes(page), await page.text_content("#stage-text"))
                await audit(page, "refundable", SHOTS)
                await page.focus("#refund")
                await page.keyboard.press("Enter")
                await page.wait_for_selector("#refund-error:has-text('Refund sent')")
                mine(quiet)
                await current_step(page, "Refunded")
                seen["refunded"] = {
                    "focus": await focused(page),
                    "label": await page.text_content("#second-tx-label"),
                    "tx": await page.text_content("#second-tx"),
                    "escrow": await page.text_content("#escrow"),
                    "words": await page.text_content("#stage-text"),
                    "steps": await step_classes(page),
                    "title": await page.title(),
                }
                await audit(page, "refunded", SHOTS)
        return seen

    seen = anyio.run(scenario)
    title, words, expires = seen["waiting"]
    assert title == "Pay for one image · GenImNFT"
    assert "public and permanent" in words and "Network fees are extra" in words
    assert re.search(r"Your image is made within \d+ minutes? of your payment", words), words
    assert re.fullmatch(r"Open for about \d+ minutes? more \(until .*GMT\+9\)\.", expires), expires  # local time
    for term in PLAIN_WORDS_HIDE:  # one click away, in "Exact terms"
        assert term.lower() not in words.lower(), term
    title, stage, focus = seen["sent"]
    assert title == "Payment sent · GenImNFT" and f"waiting for {CONFIRMATIONS} confirmations" in stage
    assert focus == "stage-text"  # Pay hid itself: focus went to the news, not to <body>
    assert seen["reloaded"] == (True, stage)
    assert seen["sends"] == 1 and seen["resends"] == 0
    assert re.fullmatch(r"0x[0-9a-f]{64}", seen["recorded"])
    title, deadline = seen["generating"]
    assert title == "Making your image · GenImNFT" and "GMT+9" in deadline
    assert seen["writes"] == 0  # three polls, nothing new: nothing announced
    classes, stage = seen["refundable"]
    assert classes == ["done", "done", "done", "bad", "now"] and "money back" in stage
    refunded = seen["refunded"]
    assert refunded["focus"] == "stage-text" and refunded["title"] == "Refunded · GenImNFT"
    assert refunded["label"] == "Refund transaction" and refunded["tx"].startswith("0x")
    assert refunded["escrow"].startswith("0 ETH (") and refunded["escrow"].endswith(" ETH refunded)")
    assert "you, the buyer" in refunded["words"]
    assert refunded["steps"] == ["done", "done", "done", "bad", "done"]


def test_failed_and_expired_pages_lead_somewhere(quiet, server, tmp_path):
    contracts = quiet.contracts
    wrong_tier = mint_calldata(image_terms(1, "a red barn", "1:1", "photorealistic"), contracts.oracle_epoch())
    value = max_value(contracts.price_in_wei(1), MARGIN_BPS)

    async def failed() -> dict:
        async with open_payments(server, "a red barn") as [url], browser_page(audited=True) as page:
            tag = bytes.fromhex(url.rsplit("/", 1)[1])
            receipt = await anyio.to_thread.run_sync(lambda: send_tx(quiet, OUTSIDER, wrong_tier + tag, value))
            token_id = contracts.nft.events.ImageRequested().process_receipt(receipt)[0]["args"]["tokenId"]
            mine(quiet)
            await page.goto(url)
            await current_step(page, "Failed")
            seen = {
                "token": token_id,
                "link": await page.get_attribute("#failure-token-link", "href"),
                "link_shown": await page.is_visible("#failure-token-link"),
                "words": await visible_text(page),
                "steps": await step_classes(page),
                "title": await page.title(),
            }
            await audit(page, "failed", SHOTS)
        return seen

    async def expired(server: HostedServer) -> dict:
        async with open_payments(server, "a blue door") as [url]:
            await anyio.sleep(2.5)
        async with browser_page(audited=True) as page:
            await page.goto(url)
            await current_step(page, "Expired")
            seen = {"words": await visible_text(page), "steps": await step_classes(page), "title": await page.title()}
            await audit(page, "expired", SHOTS)
        return seen

    seen = anyio.run(failed)
    assert seen["link"] == f"/token/{seen['token']}" and seen["link_shown"]
    assert "get_image" not in seen["words"] and seen["title"] == "Payment failed · GenImNFT"
    assert seen["steps"][0] == "bad"
    with hosted_server(front_config(quiet, tmp_path / "front.toml", payment_ttl=2)) as short:
        seen = anyio.run(expired, short)
    assert "nothing was charged" in seen["words"] and "ask the assistant you were using" in seen["words"]
    assert "call the tool" not in seen["words"] and seen["title"] == "Link expired · GenImNFT"
    assert seen["steps"][0] == "bad"


def test_a_mint_that_reverts_is_shown_as_reverted_not_as_waiting(quiet, server):
    """A wallet told to send without simulating: the mint (too little ETH) is mined and reverts; the page the buyer
    reported it from shows it refused, with its cost, and not "waiting for your payment"."""
    contracts = quiet.contracts
    data = mint_calldata(image_terms(0, "a paper boat", "1:1", "photorealistic"), contracts.oracle_epoch())

    async def scenario() -> dict:
        async with open_payments(server, "a paper boat") as [url], browser_page(audited=True) as page:
            order_id = url.rsplit("/", 1)[1]
            receipt = await anyio.to_thread.run_sync(
                lambda: send_tx(quiet, OUTSIDER, data + bytes.fromhex(order_id), 1)
            )
            async with httpx.AsyncClient(base_url=server.url) as client:
                tx = "0x" + bytes(receipt["transactionHash"]).hex()
                assert (await client.post(f"/api/orders/{order_id}/mint", json={"tx": tx})).json()["recorded"]
            mine(quiet)
            await page.goto(url)
            await current_step(page, "Failed")
            seen = {
                "status": receipt["status"],
                "stage": await page.text_content("#stage-text"),
                "plain": await page.text_content("#failure-plain"),
                "exact": await page.text_content("#failure-text"),
            }
            await audit(page, "reverted", SHOTS)
        return seen

    seen = anyio.run(scenario)
    assert seen["status"] == 0 and seen["stage"] == "This payment did not go through."
    assert "reverted" in seen["plain"] and "network fee" in seen["plain"] and "reverted" in seen["exact"], seen


def test_a_mint_of_the_same_terms_without_the_id_is_shown_with_its_token(quiet, server):
    """Someone's mint of exactly this payment's terms, without its id (a wallet that dropped the tag): it pays no
    call, and the open page says so and links the token it became."""
    contracts = quiet.contracts
    data = mint_calldata(image_terms(0, "a green lamp", "1:1", "photorealistic"), contracts.oracle_epoch())
    value = contracts.price_in_wei(0)  # whole gwei: no value offset names a payment

    async def scenario() -> dict:
        async with open_payments(server, "a green lamp") as [url], browser_page(audited=True) as page:
            receipt = await anyio.to_thread.run_sync(lambda: send_tx(quiet, OUTSIDER, data, value))
            token_id = contracts.nft.events.ImageRequested().process_receipt(receipt)[0]["args"]["tokenId"]
            mine(quiet)
            await page.goto(url)
            await page.wait_for_selector("#notice:not([hidden])")
            seen = {
                "token": token_id,
                "link": await page.get_attribute("#notice-token-link", "href"),
                "step": await page.text_content("#steps li[aria-current=step]"),
                "state": order_document(server, url)["order"]["state"],
            }
            await audit(page, "notice", SHOTS)
        return seen

    seen = anyio.run(scenario)
    assert seen["link"] == f"/token/{seen['token']}" and seen["step"] == "Pay" and seen["state"] == "awaiting"


def test_a_phone_without_a_wallet_sees_the_error_by_the_button_and_a_wallet_link(quiet, server):
    async def scenario() -> dict:
        async with open_payments(server, "a fox in snow") as [url], browser_page(width=390) as page:
            await page.goto(url)
            await page.wait_for_selector("#pay:not([disabled])")
            await page.click("#pay")
            await page.wait_for_selector("#pay-error:not(:empty)")
            button, error = await page.locator("#pay").bounding_box(), await page.locator("#pay-error").bounding_box()
            return {
                "error": await page.text_content("#pay-error"),
                "gap": error["y"] - (button["y"] + button["height"]),
                "in_view": error["y"] + error["height"] <= page.viewport_size["height"],
                "link": await page.get_attribute("#wallet-link", "href"),
                "uri": order_document(server, url)["order"]["eip681"],
            }

    seen = anyio.run(scenario)
    assert "No browser wallet" in seen["error"] and "Open in a wallet app" in seen["error"]
    assert seen["gap"] < 40 and seen["in_view"], seen
    assert seen["link"] == seen["uri"] and seen["link"].startswith("ethereum:")


def test_with_javascript_off_the_page_shows_the_terms_and_the_payment_link(quiet, server):
    async def scenario() -> tuple[str, str | None, str]:
        async with open_payments(server, "a quiet harbour") as [url], browser_page(javascript=False) as page:
            await page.goto(url)
            return await visible_text(page), await page.get_attribute("noscript a[href^='ethereum:']", "href"), url

    words, href, url = anyio.run(scenario)
    assert "a quiet harbour, photorealistic style" in words and "$0.10" in words and "Loading" not in words
    assert href == order_document(server, url)["order"]["eip681"]


def test_not_found_pages_and_odd_token_ids(quiet, server):
    huge = "1" + "0" * 22  # 23 digits: past SQLite's INTEGER
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answers = {
            path: client.get(path)
            for path in (f"/api/tokens/{huge}", f"/images/{huge}.png", f"/token/{huge}", "/pay/00", "/favicon.ico")
        }
    assert [answers[p].status_code for p in list(answers)[:4]] == [404] * 4
    assert answers["/favicon.ico"].status_code == 200 and answers["/favicon.ico"].headers["content-type"].startswith(
        "image/svg+xml"
    )

    async def scenario() -> dict:
        seen = {}
        async with browser_page(audited=True) as page:
            for state, path in (
                ("not-found", "/pay/00"),
                ("no-such-token", f"/token/{huge}"),
                ("unknown", "/token/999"),
            ):
                await page.goto(server.url + path)
                if state == "unknown":
                    await page.wait_for_selector("#stage-text:not(:empty)")
                seen[state] = await page.evaluate("""() => ({
                  lang: document.documentElement.lang, main: !!document.querySelector("main"),
                  h1: document.querySelector("h1")?.textContent, title: document.title,
                  viewport: !!document.querySelector("meta[name=viewport]"),
                })""")
                await audit(page, state, SHOTS)
        return seen

    seen = anyio.run(scenario)
    for state, page in seen.items():
        assert page["lang"] == "en" and page["main"] and page["h1"] and page["viewport"], (state, page)
    assert seen["not-found"]["title"] == "No such payment · GenImNFT"
    assert seen["unknown"]["title"] == "Not found · GenImNFT"


def test_routes_check_the_host_and_a_token_hides_its_payment_id(quiet, server):
    contracts = quiet.contracts
    terms = image_terms(0, "a green kettle", "1:1", "photorealistic")

    async def scenario() -> tuple[str, int, str]:
        async with open_payments(server, "a green kettle") as [url]:
            tag = bytes.fromhex(url.rsplit("/", 1)[1])
            data, value = (
                mint_calldata(terms, contracts.oracle_epoch()) + tag,
                max_value(contracts.price_in_wei(0), 200),
            )
            receipt = await anyio.to_thread.run_sync(lambda: send_tx(quiet, BUYER, data, value))
            mine(quiet)
            with anyio.fail_after(30):
                while order_document(server, url)["order"]["state"] != "paid":
                    await anyio.sleep(0.1)
        minted = contracts.nft.events.ImageRequested().process_receipt(receipt)[0]["args"]["tokenId"]
        return url, minted, receipt["transactionHash"].to_0x_hex()

    url, token_id, receipt_hash = anyio.run(scenario)
    order_id = url.rsplit("/", 1)[1]
    with httpx.Client(base_url=server.url, timeout=10) as client:
        public = client.get(f"/api/tokens/{token_id}")
        rebound = {
            path: client.get(path, headers={"Host": "genim.attacker.example"}).status_code
            for path in (f"/pay/{order_id}", f"/api/orders/{order_id}", f"/api/tokens/{token_id}", "/static/pay.js")
        }
        mint_report = client.post(f"/api/orders/{order_id}/mint", json={"tx": "0x" + "1" * 64},
                                  headers={"Origin": "http://genim.attacker.example"})  # fmt: skip
        # A buyer who kept only the mint's hash finds the token's page by it; other hashes find nothing.
        by_hash = client.get(f"/tx/{receipt_hash}")
        unknown, malformed = client.get("/tx/0x" + "2" * 64), client.get("/tx/0x1234")
    assert by_hash.status_code == 303 and by_hash.headers["location"] == f"/token/{token_id}"
    assert (unknown.status_code, malformed.status_code) == (404, 404)
    assert "minted no token here" in unknown.text and "not a transaction hash" in malformed.text
    assert public.status_code == 200 and public.json()["order"]["prompt"] == "a green kettle, photorealistic style"
    assert order_id not in public.text and "mint" not in public.json()["order"]
    assert set(rebound.values()) == {421}, rebound
    assert mint_report.status_code == 403


def test_qr_codes_render_off_the_event_loop_once_per_payment(quiet, server):
    """Six clients fetch the QR code of a payment with a 700-character prompt at once (0.3-0.5 s to render): the
    server keeps answering meanwhile, all six get the same picture, and it is rendered once."""
    prompt = "a very long and detailed prompt about a lighthouse at dawn, seen from the sea " * 9

    async def scenario() -> tuple[list[float], float, float, set[bytes]]:
        async with open_payments(server, prompt) as [url], httpx.AsyncClient(base_url=server.url) as client:
            qr = f"/qr/{url.rsplit('/', 1)[1]}.svg"
            waits: list[float] = []
            pictures: set[bytes] = set()
            done = anyio.Event()

            async def fetch_all() -> None:
                async def fetch() -> None:
                    reply = await client.get(qr, timeout=30)
                    assert reply.status_code == 200
                    pictures.add(reply.content)

                async with anyio.create_task_group() as fetches:
                    for _ in range(6):
                        fetches.start_soon(fetch)
                done.set()

            async def probe() -> None:
                while not done.is_set():
                    started = time.monotonic()
                    assert (await client.get("/static/pay.css")).status_code == 200
                    waits.append(time.monotonic() - started)
                    await anyio.sleep(0.02)

            started = time.monotonic()
            async with anyio.create_task_group() as group:
                group.start_soon(fetch_all)
                group.start_soon(probe)
            cold = time.monotonic() - started
            started = time.monotonic()
            async with anyio.create_task_group() as group:
                for _ in range(6):
                    group.start_soon(client.get, qr)
            warm = time.monotonic() - started
        return waits, cold, warm, pictures

    waits, cold, warm, pictures = anyio.run(scenario)
    print(f"QR: 6 at once {cold:.2f} s, 6 cached {warm:.3f} s; pay.css meanwhile {len(waits)} answers, median "
          f"{statistics.median(waits):.3f} s, longest {max(waits):.3f} s")  # fmt: skip
    assert len(pictures) == 1
    assert max(waits) < 0.2, waits  # rendered on the loop, a request waited for whole renders (0.26-0.5 s each)
    assert warm < cold / 2, (cold, warm)
