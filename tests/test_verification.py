"""What `ape run deploy --publish` would submit to the explorer verifies, and `--safe` hands ownership over in
two steps. Offline: the deploy script runs against a fresh anvil; ape-etherscan's own SourceVerifier builds
the submission, and only its HTTP client is replaced by one that records the request instead of sending it.

The explorer accepts a submission when its standard JSON input, compiled with the named compiler and
settings, yields the deployed runtime code (immutables aside: the constructor writes them) and, for an
exact match, the same metadata hash; and when the creation code plus the constructor arguments it is given
are the deployment transaction's input. The tests recompile with the project's solc (the node shim).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import ape
import eth_abi
import pytest
import solcx
from ape_etherscan.verify import SourceVerifier
from web3 import Web3
from web3.exceptions import ContractLogicError

from genim_devnet.localnet import ROOT, anvil
from genim_devnet.stack import dev_account
from genim_devnet.txn import send

NETWORK = "optimism:local:foundry"
SOURCE_ID = "contracts/GenImNFT.sol"
SOLC = Path(os.environ.get("SOLCX_BINARY_PATH", ROOT / ".cache/solcx")) / "solc-v0.8.28"
DEPLOYER, ORACLE, SAFE, STRANGER = (dev_account(i) for i in (0, 1, 5, 6))
CBOR_IPFS_PREFIX = bytes.fromhex("a264697066735822")  # {"ipfs": bytes(34) ...: solc's metadata trailer starts so


@pytest.fixture(scope="module")
def node():
    with anvil() as chain:
        yield chain


@pytest.fixture(scope="module")
def w3(node):
    return Web3(Web3.HTTPProvider(node.url))


@pytest.fixture(scope="module")
def deployed(node, tmp_path_factory) -> dict[str, Any]:
    """`ape run deploy` on the local network (devnet USDC and feeds) with an oracle and a Safe handover."""
    record_path = tmp_path_factory.mktemp("deploy") / "deployment.json"
    cmd = ["ape", "run", "deploy", "--network", NETWORK, "--account", "TEST::0", "--oracle", ORACLE.address,
           "--safe", SAFE.address, "--deployment-file", str(record_path)]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "APE_FOUNDRY_HOST": node.url}, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return {"record": json.loads(record_path.read_text()), "stdout": run.stdout}


class Submitted(Exception):
    """The request ape-etherscan would POST to the explorer, stopped before it leaves."""


class _Contracts:
    def verify_source_code(self, standard_json: dict, compiler_version: str, **fields: Any) -> str:
        raise Submitted({"standard_json": standard_json, "compiler_version": compiler_version, **fields})


class _Accounts:
    """Etherscan's `txlist` for the contract: its first transaction is the creation, with its input."""

    def __init__(self, creation_input: str) -> None:
        self.creation_input = creation_input

    def get_all_normal_transactions(self):
        yield {"input": self.creation_input}


class RecordingClients:
    """ape-etherscan's ClientFactory with the explorer's API replaced: txlist answers from the chain,
    verifysourcecode records the submission."""

    def __init__(self, creation_input: str) -> None:
        self.creation_input = creation_input

    def get_contract_client(self, address: str) -> _Contracts:
        return _Contracts()

    def get_account_client(self, address: str) -> _Accounts:
        return _Accounts(self.creation_input)


@pytest.fixture(scope="module")
def submission(node, w3, deployed) -> dict[str, Any]:
    """What Etherscan's plugin submits for the deployed contract: `network.publish_contract(address)` runs
    `SourceVerifier(address, factory).attempt_verification()` on the project, as here."""
    record = deployed["record"]
    creation_input = "0x" + bytes(w3.eth.get_transaction(record["transaction"])["input"]).hex()
    with ape.networks.parse_network_choice(NETWORK, provider_settings={"host": node.url}):
        # The deploy ran in another process: cache its type here (a local chain has no explorer to ask).
        ape.project.GenImNFT.at(record["address"], fetch_from_explorer=False)
        with pytest.raises(Submitted) as sent:
            SourceVerifier(record["address"], RecordingClients(creation_input)).attempt_verification()
    return sent.value.args[0] | {"creation_input": creation_input}


def compile_submission(standard_json: dict) -> dict[str, Any]:
    """The submitted input compiled by the project's solc; only the output selection is ours (it is not part
    of the metadata, so it cannot change the code)."""
    std = copy.deepcopy(standard_json)
    outputs = ["evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences",
               "metadata"]  # fmt: skip
    std["settings"]["outputSelection"] = {SOURCE_ID: {"GenImNFT": outputs}}
    return solcx.compile_standard(std, solc_binary=SOLC)["contracts"][SOURCE_ID]["GenImNFT"]


def masked(code: bytes, immutables: dict[str, list[dict[str, int]]]) -> bytes:
    """`code` with every immutable's bytes zeroed, as the compiler leaves them before the constructor runs."""
    out = bytearray(code)
    for refs in immutables.values():
        for ref in refs:
            out[ref["start"] : ref["start"] + ref["length"]] = bytes(ref["length"])
    return bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def ipfs_hash(data: bytes) -> bytes:
    """The sha2-256 multihash of `data` added to IPFS as one UnixFS file block (dag-pb), as solc hashes the
    metadata for its CBOR trailer (libsolutil/IpfsHash.cpp; one block below 256 KiB)."""
    assert len(data) < 256 * 1024
    unixfs = b"\x08\x02" + b"\x12" + _varint(len(data)) + data + b"\x18" + _varint(len(data))  # File, Data, filesize
    node = b"\x0a" + _varint(len(unixfs)) + unixfs  # PBNode.Data, no links
    return bytes.fromhex("1220") + hashlib.sha256(node).digest()


def metadata_hash(code: bytes) -> bytes:
    """The 34-byte IPFS multihash of the metadata in solc's CBOR trailer at the end of the runtime code."""
    trailer = code[-2 - int.from_bytes(code[-2:], "big") : -2]
    assert trailer.startswith(CBOR_IPFS_PREFIX), trailer.hex()
    return trailer[len(CBOR_IPFS_PREFIX) : len(CBOR_IPFS_PREFIX) + 34]


@pytest.fixture(scope="module")
def recompiled(submission) -> dict[str, Any]:
    return compile_submission(submission["standard_json"])


def test_submission_is_standard_json_with_the_compilers_settings(submission):
    std = submission["standard_json"]
    assert std["language"] == "Solidity" and SOURCE_ID in std["sources"]
    # Every import the contract makes travels with it (Solady, OpenZeppelin, Chainlink, through the remappings).
    assert {"solady", "openzeppelin", "chainlink"} <= {p.split("/")[2] for p in std["sources"] if ".cache" in p}
    assert (submission["contract_name"], submission["compiler_version"]) == (
        f"{SOURCE_ID}:GenImNFT",
        "0.8.28+commit.7893614a",
    )
    assert (submission["optimization_used"], submission["optimization_runs"]) == (True, 10_000)
    assert (submission["evm_version"], submission["via_ir"], submission["license_type"]) == ("cancun", False, 3)


def test_submission_recompiles_to_the_deployed_runtime_code(w3, deployed, submission, recompiled):
    record = deployed["record"]
    deployed_code = bytes(w3.eth.get_code(record["address"]))
    compiled = bytes.fromhex(recompiled["evm"]["deployedBytecode"]["object"])
    immutables = recompiled["evm"]["deployedBytecode"]["immutableReferences"]
    assert len(deployed_code) == len(compiled)
    assert masked(deployed_code, immutables) == masked(compiled, immutables)
    # What the mask hides is exactly what the constructor wrote: the three addresses and the feed's scale.
    written = {deployed_code[r["start"] : r["start"] + r["length"]] for refs in immutables.values() for r in refs}
    addresses = (record["usdc"], record["eth_usd_feed"], record["sequencer_uptime_feed"])
    assert written == {eth_abi.encode(["address"], [a]) for a in addresses} | {(10 ** (8 + 3)).to_bytes(32, "big")}


def test_metadata_hash_matches_so_the_match_is_exact(w3, deployed, recompiled):
    deployed_code = bytes(w3.eth.get_code(deployed["record"]["address"]))
    metadata = recompiled["metadata"].encode()
    assert metadata_hash(deployed_code) == ipfs_hash(metadata)


def test_constructor_arguments_are_the_deploy_scripts(deployed, submission, recompiled):
    record = deployed["record"]
    types = ["address", "uint256[3]", "uint16", "address[]", "address", "address", "address"]
    expected = eth_abi.encode(types, [DEPLOYER.address, record["usd_price_units"], record["fee_bps"],
                                      record["oracles"], record["usdc"], record["eth_usd_feed"],
                                      record["sequencer_uptime_feed"]])  # fmt: skip
    assert submission["constructor_arguments"] == expected.hex()
    creation = recompiled["evm"]["bytecode"]["object"]
    assert submission["creation_input"] == "0x" + creation + expected.hex()


def test_a_changed_source_no_longer_verifies(w3, deployed, submission):
    """The comparison is sensitive: the metadata hashes every source, so one more blank line at the end of the
    contract changes the code the explorer would compile, and that no longer matches what is deployed."""
    std = copy.deepcopy(submission["standard_json"])
    std["sources"][SOURCE_ID]["content"] += "\n"
    edited = bytes.fromhex(compile_submission(std)["evm"]["deployedBytecode"]["object"])
    deployed_code = bytes(w3.eth.get_code(deployed["record"]["address"]))
    assert metadata_hash(edited) != metadata_hash(deployed_code)


def _printed_call(stdout: str) -> tuple[str, str]:
    lines = {k.strip(): v.split()[0] for k, _, v in (line.partition(":") for line in stdout.splitlines()) if v.strip()}
    return lines["to"], lines["data"]


def test_safe_handover_leaves_the_deployer_owner_until_the_safe_accepts(w3, deployed):
    record = deployed["record"]
    nft = w3.eth.contract(address=record["address"], abi=json.loads((ROOT / "genimnft/GenImNFT.abi.json").read_text()))
    calls = nft.functions
    assert (calls.owner().call(), calls.pendingOwner().call()) == (DEPLOYER.address, SAFE.address)
    assert (record["owner"], record["pending_owner"]) == (DEPLOYER.address, SAFE.address)
    # Until it accepts, the Safe has no power and the deployer keeps every one.
    with pytest.raises(ContractLogicError):
        calls.setFee(0).call({"from": SAFE.address})
    send(w3, DEPLOYER, calls.setFee(400))
    with pytest.raises(ContractLogicError):  # only the pending owner can accept
        calls.acceptOwnership().call({"from": STRANGER.address})

    to, data = _printed_call(deployed["stdout"])
    assert (to, data) == (record["address"], "0x" + Web3.keccak(text="acceptOwnership()")[:4].hex())
    nonce = w3.eth.get_transaction_count(SAFE.address)
    tx = {"from": SAFE.address, "to": to, "data": data, "value": 0, "chainId": w3.eth.chain_id, "nonce": nonce,
          "gas": 100_000, "gasPrice": w3.eth.gas_price}  # fmt: skip
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(SAFE.sign_transaction(tx).raw_transaction)
    )
    assert receipt["status"] == 1
    assert (calls.owner().call(), calls.pendingOwner().call()) == (SAFE.address, "0x" + "00" * 20)
    with pytest.raises(ContractLogicError):
        calls.setFee(0).call({"from": DEPLOYER.address})
    send(w3, SAFE, calls.setFee(300))
    assert calls.feeBps().call() == 300
