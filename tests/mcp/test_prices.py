"""Dollar prices on the ETH rail: what the front shows is what the contract says (price(tier) in dollars, priceInWei
for ETH); a mint sends the price plus a margin and the contract returns the rest; a mint that the contract refuses
(the oracle set or the rate moved) is reported as such, with what it cost (gas only), and the same call goes on
with a fresh link."""

from __future__ import annotations

import json
import re

import anyio
import httpx
from web3 import Web3

from genim_devnet.txn import send
from genim_mcp.pricing import max_value
from genim_mcp.units import eth_exact, eth_text
from genimnft.contract import ABI
from tests.mcp.conftest import (
    MARGIN_BPS,
    LogLog,
    ProgressLog,
    Stack,
    front_config,
    gas_cost,
    hosted_server,
    http_session,
    json_content,
    local_stack,
    order_document,
    payment_urls,
    send_tx,
)
from tests.services import account_key

NEW_ORACLE = 20


def tiers(result) -> dict:
    return json_content(result)


def mint_of(document: dict) -> tuple[bytes, int]:
    """The calldata and value the pay page would have the wallet send."""
    mint = document["order"]["mint"]
    return bytes.fromhex(mint["data"].removeprefix("0x")), int(mint["value"], 16)


def spent(stack: Stack, receipt) -> int:
    """What the sender's balance lost in the block of `receipt` (its only transaction there)."""
    sender, block = stack.w3.eth.get_transaction(receipt["transactionHash"])["from"], receipt["blockNumber"]
    return stack.w3.eth.get_balance(sender, block - 1) - stack.w3.eth.get_balance(sender, block)


def report(server, pay_url: str, receipt) -> bool:
    """What the pay page does with the hash its wallet returned; False if the payment was no longer open."""
    order_id = pay_url.rsplit("/", 1)[1]
    tx = receipt["transactionHash"].to_0x_hex()
    return httpx.post(f"{server.url}/api/orders/{order_id}/mint", json={"tx": tx}, timeout=10).json()["recorded"]


def set_rate(stack: Stack, usd_per_eth: int) -> None:
    """A new ETH/USD round, then a minute later: past the contract's 60 s rate cache, so mints use it."""
    stack.contracts.feeds.set_price(usd_per_eth)
    stack.advance(61)


def test_prices_shown_are_the_contracts_and_follow_it(project, ipfs, tmp_path):
    """list_tiers and the pay page show price(tier) in dollars and priceInWei(tier) in ETH, and follow setPrice
    and the feed; tool descriptions carry no figure that could go stale; a stale feed closes ETH payments (the
    tool refuses before any link) and the page offers no mint."""
    with local_stack(project, ipfs, tmp_path, model=None) as chain:
        nft, contracts = chain.deployment.nft, chain.contracts
        config = front_config(chain, tmp_path / "front.toml")

        async def until(session, predicate) -> dict:
            with anyio.fail_after(15):
                while not predicate(document := tiers(await session.call_tool("list_tiers", {}))):
                    await anyio.sleep(0.2)
            return document

        async def scenario(server):
            async with http_session(server) as session, anyio.create_task_group() as group:
                described = {tool.name: tool.description for tool in (await session.list_tools()).tools}
                before = tiers(await session.call_tool("list_tiers", {}))
                progress = ProgressLog()
                group.start_soon(lambda: session.call_tool("generate_image_basic", {"prompt": "a kite"},
                                                           progress_callback=progress))  # fmt: skip
                [url] = await payment_urls(progress)
                page_before = await anyio.to_thread.run_sync(order_document, server, url)
                wei_before = nft.functions.priceInWei(0).call()

                send(chain.w3, contracts.owner, nft.functions.setPrice(0, 250_000))  # $0.25
                contracts.feeds.set_price(2500)  # no mint yet: nothing cached, priceInWei reads it at once
                after = await until(session, lambda d: d["tiers"][0]["price_usd"] == "0.25" and
                                    d["usd_per_eth"].startswith("2500"))  # fmt: skip
                page_after = await anyio.to_thread.run_sync(order_document, server, url)
                wei_after = nft.functions.priceInWei(0).call()

                contracts.feeds.make_stale(2 * 3600)
                closed = await until(session, lambda d: d["eth_payments"] != "available")
                page_closed = await anyio.to_thread.run_sync(order_document, server, url)
                refused = await session.call_tool("generate_image_premium", {"prompt": "a kite"})
                group.cancel_scope.cancel()
            return (
                described,
                before,
                page_before,
                wei_before,
                after,
                page_after,
                wei_after,
                closed,
                page_closed,
                refused,
            )

        with hosted_server(config) as server:
            described, before, page_before, wei_before, after, page_after, wei_after, closed, page_closed, refused = (
                anyio.run(scenario, server)
            )

    # Before: $0.10 at $3,000/ETH, as price(0) and priceInWei(0) say, in list_tiers and on the page.
    assert before["tiers"][0]["price"] == f"$0.10 ({eth_text(wei_before)} ETH at $3,000/ETH)"
    assert before["tiers"][0]["price_wei"] == str(wei_before) and before["tiers"][0]["price_usd"] == "0.1"
    order = page_before["order"]
    assert order["price_usd"] == "$0.10" and order["price_wei"] == str(wei_before)
    assert order["usd_per_eth"] == "$3,000/ETH" and order["max_eth"] == eth_exact(max_value(wei_before, MARGIN_BPS))
    data, value = mint_of(page_before)
    assert value == max_value(wei_before, MARGIN_BPS) and wei_before < value <= wei_before * 1.02 + 10**9
    function, args = Web3().eth.contract(abi=ABI).decode_function_input(data)
    assert function.fn_name == "mint" and args["expectedEpoch"] == order["oracle_epoch"] == 1
    # The EIP-681 link (no calldata tag) carries this payment's offset in the margin's last gwei: never more.
    link_value = int(re.fullmatch(r".*&uint256=1&value=(\d+)", order["eip681"])[1])
    assert value - 10**9 < link_value < value

    # setPrice and a new rate: both show at once, and the page's mint sends the new price plus the margin.
    assert wei_after == 100_000 * 10**9 and after["tiers"][0]["price"] == "$0.25 (0.0001 ETH at $2,500/ETH)"
    assert page_after["order"]["price_usd"] == "$0.25" and mint_of(page_after)[1] == max_value(wei_after, 200)

    # Descriptions name no price, rate or deadline (they would go stale); they send buyers to list_tiers.
    for name in ("generate_image_basic", "generate_image_premium", "generate_image_ultra"):
        assert "list_tiers" in described[name] and "$" not in described[name], described[name]
        assert not re.search(r"\d\.\d|\d+ s\b", described[name]), described[name]

    # A stale feed: the contract refuses ETH mints, and the front says so instead of opening a payment.
    assert "StalePrice" in closed["eth_payments"] and closed["tiers"][0]["price_wei"] is None
    assert closed["tiers"][0]["price"].startswith("$0.25 (ETH payments are paused")
    assert page_closed["order"]["mint"] is None and "StalePrice" in page_closed["order"]["eth_unavailable"]
    assert refused.isError and "StalePrice" in refused.content[0].text
    assert refused.content[0].text.endswith("nothing was paid")


def test_mint_after_an_oracle_was_authorised_reverts_and_the_call_goes_on_with_a_fresh_link(stack, tmp_path):
    """The owner authorises another oracle between the quote and the buyer's mint: the mint names the old epoch
    and reverts (OracleSetChanged); the buyer lost gas only and is told so, and the same call offers a fresh link
    at the new epoch, which pays and returns the image."""
    buyer = 16
    config = front_config(stack, tmp_path / "front.toml")
    nft, contracts, logs = stack.deployment.nft, stack.contracts, LogLog()

    async def scenario(server):
        async with http_session(server, logs) as session, anyio.create_task_group() as group:
            progress, outcome = ProgressLog(), {}

            async def call():
                outcome["result"] = await session.call_tool("generate_image_basic", {"prompt": "a quiet harbour"},
                                                            progress_callback=progress)  # fmt: skip

            group.start_soon(call)
            [first] = await payment_urls(progress)
            quoted = await anyio.to_thread.run_sync(order_document, server, first)
            send(stack.w3, contracts.owner, nft.functions.setOracle(account_key(NEW_ORACLE).address, True))
            reverted = send_tx(stack, buyer, *mint_of(quoted))
            # The front may have failed the payment already: it saw the authorisation, after which no mint of the
            # old epoch can succeed. Either way the buyer hears the same truth.
            report(server, first, reverted)
            _, second = await payment_urls(progress, count=2)
            failed = await anyio.to_thread.run_sync(order_document, server, first)
            fresh = await anyio.to_thread.run_sync(order_document, server, second)
            paid = send_tx(stack, buyer, *mint_of(fresh))
            with anyio.fail_after(60):
                while "result" not in outcome:
                    await anyio.sleep(0.05)
            return quoted, reverted, failed, second, fresh, paid, outcome["result"]

    with hosted_server(config) as server:
        quoted, reverted, failed, second, fresh, paid, result = anyio.run(scenario, server)

    epoch = quoted["order"]["oracle_epoch"]
    assert reverted["status"] == 0 and spent(stack, reverted) == gas_cost(reverted)  # gas, and nothing else
    failure = failed["order"]["failure"]
    assert failed["order"]["state"] == "failed" and failed["stage"] == "failed"
    assert "OracleSetChanged" in failure and "Nothing was charged" in failure and "gas" in failure, failure
    assert "paid" not in failed["order"]["state"] and failed["token"] is None
    assert failed["order"]["renewed_by"] == "/pay/" + second.rsplit("/", 1)[1]
    assert any("OracleSetChanged" in m and second in m for m in logs.messages), logs.messages
    assert fresh["order"]["oracle_epoch"] == epoch + 1 == nft.functions.oracleEpoch().call()
    assert paid["status"] == 1
    assert not result.isError, result.content[0].text
    receipt = json.loads(result.content[0].text)
    assert receipt["mint_tx"] == paid["transactionHash"].to_0x_hex()


def test_a_rate_move_within_the_margin_still_settles_and_the_excess_comes_back(stack, tmp_path):
    buyer = 17
    config = front_config(stack, tmp_path / "front.toml")
    nft = stack.deployment.nft

    async def scenario(server):
        async with http_session(server) as session, anyio.create_task_group() as group:
            progress, outcome = ProgressLog(), {}

            async def call():
                outcome["result"] = await session.call_tool("generate_image_basic", {"prompt": "a paper boat"},
                                                            progress_callback=progress)  # fmt: skip

            group.start_soon(call)
            [url] = await payment_urls(progress)
            quoted = await anyio.to_thread.run_sync(order_document, server, url)
            quoted_wei = nft.functions.priceInWei(0).call()
            set_rate(stack, 2950)  # ETH 1.7% cheaper: the price in wei rises by less than the 2% margin
            charged = nft.functions.priceInWei(0).call()
            receipt = send_tx(stack, buyer, *mint_of(quoted))
            with anyio.fail_after(60):
                while "result" not in outcome:
                    await anyio.sleep(0.05)
            return quoted, quoted_wei, charged, receipt, outcome["result"]

    try:
        with hosted_server(config) as server:
            quoted, quoted_wei, charged, receipt, result = anyio.run(scenario, server)
    finally:
        set_rate(stack, 3000)
    value = mint_of(quoted)[1]
    assert quoted_wei < charged < value, (quoted_wei, charged, value)
    assert receipt["status"] == 1
    assert spent(stack, receipt) == charged + gas_cost(receipt)  # the excess came back in the same transaction
    assert not result.isError, result.content[0].text
    token_id = json.loads(result.content[0].text)["token_id"]
    assert nft.functions.request(token_id).call()[5] == charged  # the escrow


def test_a_rate_move_past_the_margin_reverts_and_the_buyer_is_told_what_it_cost(stack, tmp_path):
    buyer = 18
    config = front_config(stack, tmp_path / "front.toml")
    nft = stack.deployment.nft

    async def scenario(server):
        async with http_session(server) as session, anyio.create_task_group() as group:
            progress, outcome = ProgressLog(), {}

            async def call():
                outcome["result"] = await session.call_tool("generate_image_basic", {"prompt": "a red balloon"},
                                                            progress_callback=progress)  # fmt: skip

            group.start_soon(call)
            [first] = await payment_urls(progress)
            quoted = await anyio.to_thread.run_sync(order_document, server, first)
            set_rate(stack, 2800)  # ETH 6.7% cheaper: past the margin
            reverted = send_tx(stack, buyer, *mint_of(quoted))
            assert report(server, first, reverted)
            _, second = await payment_urls(progress, count=2)
            failed = await anyio.to_thread.run_sync(order_document, server, first)
            fresh = await anyio.to_thread.run_sync(order_document, server, second)
            paid = send_tx(stack, buyer, *mint_of(fresh))
            with anyio.fail_after(60):
                while "result" not in outcome:
                    await anyio.sleep(0.05)
            return reverted, failed, fresh, paid, nft.functions.priceInWei(0).call(), outcome["result"]

    try:
        with hosted_server(config) as server:
            reverted, failed, fresh, paid, charged, result = anyio.run(scenario, server)
    finally:
        set_rate(stack, 3000)
    assert reverted["status"] == 0 and spent(stack, reverted) == gas_cost(reverted)
    failure = failed["order"]["failure"]
    assert "InsufficientPayment" in failure and "rate moved past the margin" in failure, failure
    assert f"Nothing was charged but that transaction's gas ({eth_exact(gas_cost(reverted))} ETH)" in failure
    assert fresh["order"]["price_wei"] == str(charged) and mint_of(fresh)[1] == max_value(charged, MARGIN_BPS)
    assert paid["status"] == 1 and spent(stack, paid) == charged + gas_cost(paid)
    assert not result.isError, result.content[0].text
