"""Bad input is refused before any payment link: the guard answers, no order is recorded and nothing is sent."""

from __future__ import annotations

import sqlite3

import anyio
import pytest
from web3 import Web3

from genim_mcp.calldata import MintQuote, mint_calldata, tag_of
from genim_mcp.pricing import max_value
from genim_mcp.terms import TermsError, image_terms
from genimnft.contract import ABI
from tests.mcp.conftest import ProgressLog, front_config, nonce, stdio_session

PAYER = 8
BAD = [
    ({"prompt": ""}, "the prompt is empty"),
    ({"prompt": "   "}, "the prompt is empty"),
    ({"prompt": "a" * 1001}, "the contract takes at most 1000"),
    ({"prompt": "é" * 495}, "the contract takes at most 1000"),  # 990 bytes, over with ", photorealistic style"
    ({"prompt": "a cat", "aspect_ratio": "3:2"}, "aspect_ratio"),
    ({"prompt": "a cat", "style": "noir"}, "style"),
]


def test_bad_input_is_refused_before_any_payment(stack, tmp_path):
    config = front_config(stack, tmp_path / "front.toml", account=f"TEST::{PAYER}")

    async def scenario():
        async with stdio_session(config) as session:
            answers = []
            for arguments, _ in BAD:
                progress = ProgressLog()
                result = await session.call_tool("generate_image_basic", arguments, progress_callback=progress)
                answers.append((result, progress))
            return answers

    answers = anyio.run(scenario)
    for (arguments, expected), (result, progress) in zip(BAD, answers, strict=True):
        assert result.isError, arguments
        assert expected in result.content[0].text, (arguments, result.content[0].text)
        assert progress.notes == [] and progress.payment_url() is None
    orders = sqlite3.connect(tmp_path / "front-state" / "front.sqlite3").execute("SELECT count(*) FROM orders")
    assert orders.fetchone()[0] == 0
    assert nonce(stack, PAYER) == 0


@pytest.mark.parametrize("prompt", ["x", "é" * 100, "🦊" * 200, "a" * 980])
def test_payment_tag_round_trips_through_mint_calldata(prompt):
    terms = image_terms(2, prompt, "9:16", "abstract")
    tag = bytes(range(16))
    data = mint_calldata(terms, 7, tag)
    assert tag_of(data) == tag
    assert tag_of(mint_calldata(terms, 7)) is None
    # The contract's ABI reads the tagged calldata as mint(prompt, tier, aspect, oracleEpoch): the tag is ignored.
    function, args = Web3().eth.contract(abi=ABI).decode_function_input(data)
    assert function.fn_name == "mint" and args == {"prompt": terms.prompt, "tier": 2, "aspect": 2, "expectedEpoch": 7}


def test_eip681_link_names_the_epoch_and_sends_the_price_with_its_margin():
    quote = MintQuote(image_terms(1, "a cat & a dog", "16:9", "cartoon"), 3, max_value(33_334 * 10**9, 200))
    uri = quote.eip681("0x" + "ab" * 20, 10)
    assert uri == (
        f"ethereum:0x{'ab' * 20}@10/mint?string=a%20cat%20%26%20a%20dog%2C%20cartoon%20style&uint8=1&uint8=1"
        "&uint256=3&value=34001000000000"
    )


def test_lone_surrogates_are_not_a_prompt():
    # The SDK's JSON parser already refuses a lone surrogate on the wire (test_hosted); the guard does too.
    with pytest.raises(TermsError, match="lone surrogate"):
        image_terms(0, "a lone \ud800 surrogate", "1:1", "artistic")


def test_composed_prompt_bound_is_the_contracts():
    assert len(image_terms(0, "a" * 979, "1:1", "abstract").prompt.encode()) == 995
    with pytest.raises(TermsError, match="1001 bytes"):
        image_terms(0, "a" * 985, "1:1", "abstract")
