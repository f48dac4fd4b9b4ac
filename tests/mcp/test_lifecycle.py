"""What happens around a paid call: a server restart while the oracle works, and a deadline that passes (the tool
names the refund; the pay page's Refund button pays the escrow back)."""

from __future__ import annotations

import json
import re
import signal

import anyio

from genimnft.contract import Asset
from tests.mcp.browser import wallet_page
from tests.mcp.conftest import (
    ProgressLog,
    front_config,
    hosted_server,
    http_session,
    json_content,
    local_stack,
    stdio_session,
)
from tests.services import account_key

PAID = re.compile(r"paid: token (\d+) minted in tx (0x[0-9a-f]{64})")


def paid_note(progress: ProgressLog) -> tuple[int, str] | None:
    for _value, message in progress.notes:
        if match := PAID.search(message or ""):
            return int(match[1]), match[2]
    return None


def test_restart_while_waiting_then_get_image_answers(stack, tmp_path):
    config = front_config(stack, tmp_path / "front.toml", account="TEST::12")
    progress = ProgressLog()

    async def first_server():
        async with stdio_session(config) as session, anyio.create_task_group() as group:
            group.start_soon(lambda: session.call_tool("generate_image_basic", {"prompt": "a moth"},
                                                       progress_callback=progress))  # fmt: skip
            with anyio.fail_after(60):
                while paid_note(progress) is None:
                    await anyio.sleep(0.05)
            group.cancel_scope.cancel()  # the client goes away; its server process is stopped with it

    async def second_server(token_id: int):
        async with stdio_session(config) as session:
            with anyio.fail_after(60):
                while True:
                    result = await session.call_tool("get_image", {"token_id": token_id})
                    if len(result.content) == 3 or result.isError:
                        return result
                    assert json_content(result)["status"] == "generating"
                    await anyio.sleep(0.3)

    stack.daemon.send_signal(signal.SIGSTOP)  # the oracle "works" for as long as the test needs
    try:
        anyio.run(first_server)
    finally:
        stack.daemon.send_signal(signal.SIGCONT)
    token_id, mint_tx = paid_note(progress)
    result = anyio.run(second_server, token_id)
    assert not result.isError, result.content[0].text
    receipt = json.loads(result.content[0].text)
    assert receipt["token_id"] == token_id and receipt["mint_tx"] == mint_tx and receipt["set_image_tx"]
    assert result.content[1].mimeType == "image/png"


def test_deadline_passed_the_tool_names_the_refund_and_the_page_refunds(project, ipfs, tmp_path):
    buyer = account_key(13).address
    with local_stack(project, ipfs, tmp_path, model=None) as chain:  # no oracle: the deadline will pass
        config = front_config(chain, tmp_path / "front.toml")
        chain_id = chain.w3.eth.chain_id

        async def scenario(server):
            async with http_session(server) as session, anyio.create_task_group() as group:
                progress, outcome = ProgressLog(), {}

                async def call():
                    outcome["result"] = await session.call_tool("generate_image_basic", {"prompt": "a late train"},
                                                                progress_callback=progress)  # fmt: skip

                group.start_soon(call)
                with anyio.fail_after(30):
                    while progress.payment_url() is None:
                        await anyio.sleep(0.05)
                async with wallet_page(chain.url, chain_id, buyer) as page:
                    await page.goto(progress.payment_url())
                    await page.click("#pay")
                    with anyio.fail_after(30):
                        while not any("generating" in (m or "") for _, m in progress.notes):
                            await anyio.sleep(0.05)
                    chain.rpc("evm_increaseTime", chain.deployment.nft.functions.timeout().call() + 5)
                    chain.rpc("evm_mine")
                    with anyio.fail_after(30):
                        while "result" not in outcome:
                            await anyio.sleep(0.05)
                    await page.wait_for_selector("#refund:not([hidden]):not([disabled])", timeout=30_000)
                    await page.click("#refund")
                    await page.wait_for_selector("#stage-text:has-text('Refunded')", timeout=30_000)
                status = json_content(await session.call_tool("refund_status", {"token_id": paid_note(progress)[0]}))
            return outcome["result"], progress, status

        with hosted_server(config) as server:
            result, progress, status = anyio.run(scenario, server)
        token_id, _mint_tx = paid_note(progress)
        message = result.content[0].text
        assert result.isError
        assert f"refund({token_id})" in message and f"{server.url}/token/{token_id}" in message
        assert f"cast send {chain.deployment.address} 'refund(uint256)' {token_id}" in message
        assert status["status"] == "refunded" and status["refundable"] is False
        nft = chain.deployment.nft
        [requested] = nft.events.ImageRequested().get_logs(from_block=chain.deployment.block)
        [refunded] = nft.events.Refunded().get_logs(from_block=chain.deployment.block)
        assert refunded["args"]["tokenId"] == token_id and refunded["args"]["holder"] == buyer
        assert refunded["args"]["amount"] == requested["args"]["escrow"] > 0 and refunded["args"]["asset"] == 0
        assert f"Its escrow of {Asset.ETH.amount_text(requested['args']['escrow'])} goes back" in message
