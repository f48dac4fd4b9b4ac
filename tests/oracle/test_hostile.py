"""Hostile input: prompts that try to break the metadata, and configurations that are wrong at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st

from genimnft.ipfs import IpfsClient
from genimnft.metadata import ImageFacts, decode_prompt, metadata_bytes
from tests.services import (
    ROOT,
    account_key,
    assert_all_set_once,
    make_daemon,
    oracle_config,
    write_config,
)

HOSTILE_PROMPTS = [
    "é" * 500,  # exactly 1000 bytes, two-byte characters to the end
    "a" * 996 + "🎨",  # a four-byte character ending exactly at byte 1000
    "tab\there, newline\nthere, NUL\x00, bell\x07, escape\x1b[31m",
    'quotes " and \\" and \\\\ backslashes \\u0000',
    '{"name": "forged", "image": "ipfs://evil"}',
    "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "right-to-left \u202etxt.exe\u202c and \u2066isolates\u2069, zero width \u200b",
]
INVALID_UTF8 = b"caf\xe9 \xff\xfe broken \xc3"


def test_hostile_prompts_round_trip_through_metadata(deployment, ipfs, tiny_model, tmp_path):
    buyer = account_key(2)
    token_ids = [deployment.mint(buyer, prompt, 0) for prompt in HOSTILE_PROMPTS]
    # Invalid UTF-8 cannot be passed as a string by any ABI library: send the calldata by hand.
    epoch = deployment.stack.oracle_epoch()
    selector = deployment.nft.functions.mint("x", 0, 0, epoch)._encode_transaction_data()[:10]
    calldata = selector + encode(["bytes", "uint8", "uint8", "uint256"], [INVALID_UTF8, 0, 0, epoch]).hex()
    tx = {"to": deployment.address, "data": calldata, "value": deployment.stack.price_in_wei(0),
          "from": buyer.address, "nonce": deployment.w3.eth.get_transaction_count(buyer.address),
          "chainId": deployment.w3.eth.chain_id, "gas": 300_000,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**6}  # fmt: skip
    receipt = deployment.w3.eth.wait_for_transaction_receipt(
        deployment.w3.eth.send_raw_transaction(buyer.sign_transaction(tx).raw_transaction)
    )
    assert receipt["status"] == 1
    invalid_id = deployment.nft.functions.nextTokenId().call() - 1

    daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path))
    assert daemon.drain(timeout=120)
    assert_all_set_once(deployment, ipfs, [*token_ids, invalid_id], tmp_path)
    client = IpfsClient(ipfs.api_url)
    expected = [*HOSTILE_PROMPTS, INVALID_UTF8.decode("utf-8", errors="replace")]
    for token_id, prompt in zip([*token_ids, invalid_id], expected, strict=True):
        uri = deployment.nft.functions.tokenURI(token_id).call()
        document = json.loads(client.cat(uri.removeprefix("ipfs://")))
        assert document["description"] == prompt
        assert document["name"] == f"GenImNFT #{token_id}"
    assert "\ufffd" in expected[-1]


@given(st.text(max_size=400))
def test_any_prompt_makes_valid_json_that_returns_it(prompt):
    facts = ImageFacts(1, prompt, 0, "m", 512, 512, 0, 1, 0.0, 42, 1_700_000_000, "bafkreiexample")
    assert json.loads(metadata_bytes(facts))["description"] == prompt


@given(st.binary(max_size=200))
def test_any_bytes_decode_without_raising(raw):
    text = decode_prompt(raw)
    assert text == raw.decode("utf-8", errors="replace")


def _deploy_reverter(deployment) -> str:
    """A contract that is not GenImNFT: its code (PUSH1 0 PUSH1 0 REVERT) reverts every call."""
    deployer = account_key(9)
    init = "0x6460006000fd6000526005601bf3"  # returns the 5-byte runtime 0x60006000fd
    tx = {"data": init, "from": deployer.address, "nonce": deployment.w3.eth.get_transaction_count(deployer.address),
          "chainId": deployment.w3.eth.chain_id, "gas": 100_000, "maxFeePerGas": 10**10,
          "maxPriorityFeePerGas": 10**6}  # fmt: skip
    tx_hash = deployment.w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
    return deployment.w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]


def _start_error(config, tmp_path) -> subprocess.CompletedProcess:
    path = write_config(config, tmp_path / "oracle.toml")
    return subprocess.run([sys.executable, "-m", "oracle.cli", "run", "--config", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("case", "overrides", "message"),
    [
        ("no contract", {"contract": "0x" + "12" * 20}, "no contract at 0x1212121212121212121212121212121212121212"),
        ("bad address", {"contract": "0xnot-an-address"}, "bad contract address '0xnot-an-address'"),
        ("not a GenImNFT", {"contract": "PRECOMPILE"}, "is not a GenImNFT contract"),
        ("not an oracle", {"account": "TEST::7"}, "is not an authorised oracle of"),
        ("no such account", {"account": "nobody"}, "no ape account 'nobody'"),
        ("no model", {"model": "/nonexistent/model"}, "cannot load model '/nonexistent/model'"),
        ("RPC unreachable", {"rpc_uri": "http://127.0.0.1:9"}, "RPC http://127.0.0.1:9 does not answer"),
        ("IPFS unreachable", {"ipfs_api": "http://127.0.0.1:9"}, "IPFS node http://127.0.0.1:9 does not answer"),
    ],
)
def test_wrong_configuration_is_one_line_and_non_zero(deployment, ipfs, tiny_model, tmp_path, case, overrides, message):
    overrides = dict(overrides)
    if overrides.get("contract") == "PRECOMPILE":
        overrides["contract"] = _deploy_reverter(deployment)
    model = overrides.pop("model", None)
    config = oracle_config(deployment, ipfs, model or tiny_model, tmp_path / "state", **overrides)
    result = _start_error(config, tmp_path)
    assert result.returncode != 0, case
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("genim-oracle: ") and message in last, last
