"""The main job, end to end on this machine: `make demo` (or `make demo MODEL=stabilityai/sd-turbo`).

Starts anvil (OP-stack mode) and a js-ipfs node, deploys GenImNFT with `ape run deploy` (which brings up
Circle's real USDC and Chainlink's mock ETH/USD and sequencer feeds on the local chain), starts the oracle
daemon, mints one request paid in ETH at the feed's rate and one paid in USDC by the buyer's signed EIP-3009
authorization (sent by a relayer), waits until both images are set, prints the result, and stops what it
started. Without MODEL it builds a tiny random-weight pipeline: its images are noise, but every step is the
real one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genim_devnet.localnet import anvil, ipfs_node  # noqa: E402
from genim_devnet.stack import USDC_OWNER, dev_account  # noqa: E402
from genim_devnet.tiny_model import build_tiny_pipeline  # noqa: E402
from genim_devnet.txn import send  # noqa: E402
from genim_devnet.usdc import FIAT_TOKEN, artifact, random_nonce, sign_transfer_authorization  # noqa: E402
from genimnft.aspects import ASPECT_LABELS, Aspect  # noqa: E402
from genimnft.ipfs import IpfsClient  # noqa: E402

NETWORK = "optimism:local:foundry"
STATUS = ["None", "Pending", "Fulfilled", "Refunded"]
ORACLE, ETH_BUYER, RELAYER = 1, 2, 3  # test accounts (public keys of the test mnemonic)


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def usd(units: int) -> str:
    """USDC units (6 decimals) as dollars with at least two decimals: 95000 -> "$0.095"."""
    whole, fraction = f"{Decimal(units).scaleb(-6):.6f}".split(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def deploy(env: dict[str, str], oracle: str, work: Path) -> dict:
    path = work / "deployment.json"
    cmd = ["ape", "run", "deploy", "--network", NETWORK, "--account", "TEST::0", "--oracle", oracle,
           "--placeholder-uri", "ipfs://placeholder-pending-image", "--deployment-file", str(path)]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())


def oracle_config(work: Path, rpc: str, deployment: dict, ipfs_api: str, model: str, tiny: bool) -> Path:
    sizes = {0: 64, 1: 96, 2: 128} if tiny else {0: 512, 1: 768, 2: 1024}
    lines = [f'network = "{NETWORK}"', f'rpc_uri = "{rpc}"', f'contract = "{deployment["address"]}"',
             f'account = "TEST::{ORACLE}"', f'ipfs_api = "{ipfs_api}"', f'state_dir = "{work / "oracle-state"}"',
             f"start_block = {deployment['block']}", "poll_interval = 0.5", "metrics_port = 0"]  # fmt: skip
    for tier, size in sizes.items():
        lines += [f"[tiers.{tier}]", f'model = "{model}"', f"width = {size}", f"height = {size}", "steps = 1"]
        lines += ["size_step = 16"] if tiny else []  # the tiny model's latent grid; real models keep 64
    path = work / "oracle.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def mint_eth(nft, buyer, args: argparse.Namespace) -> int:
    """The ETH rail: the buyer names the oracle epoch it read and pays the tier's dollar price at the feed's rate
    (msg.value is its maximum; any excess comes back in the same transaction)."""
    value = nft.priceInWei(args.tier)
    receipt = nft.mint(args.prompt, args.tier, args.aspect, nft.oracleEpoch(), sender=buyer, value=value)
    [event] = receipt.decode_logs(nft.ImageRequested)
    rate = nft.cachedRate()[0] / 10**8  # the checked ETH/USD answer this mint used (8 decimals)
    say(f"ETH mint: token {event.tokenId}, {usd(nft.price(args.tier))} = {event.escrow} wei in escrow at ${rate:g} per "
        f"ETH; prompt bound on-chain: {event.prompt!r}, aspect {Aspect(event.aspect).label}")  # fmt: skip
    return event.tokenId


def mint_usdc(nft, deployment: dict, relayer, args: argparse.Namespace) -> int:
    """The USDC rail: the buyer, who holds USDC and no ETH, signs an EIP-3009 authorization for exactly the
    price; the relayer sends it with the mint and pays the gas; the token is the buyer's."""
    import ape

    buyer = Account.create()  # a fresh key: it holds USDC and no ETH at all
    w3 = ape.chain.provider.web3
    token = w3.eth.contract(address=deployment["usdc"], abi=artifact(FIAT_TOKEN)["abi"])
    usdc_owner = dev_account(USDC_OWNER)  # the devnet USDC's owner and minter
    send(w3, usdc_owner, token.functions.mint(buyer.address, 10**6))  # one dollar
    price = nft.price(args.tier)
    valid_before, nonce = ape.chain.pending_timestamp + 3600, random_nonce()
    sig = sign_transfer_authorization(buyer, token.address, w3.eth.chain_id, nft.address, price, 0, valid_before,
                                      nonce)  # fmt: skip
    receipt = nft.mintWithAuthorization(args.prompt, args.tier, args.aspect, nft.oracleEpoch(), buyer.address, 0,
                                        valid_before, nonce, sig.v, sig.r, sig.s, sender=relayer)  # fmt: skip
    # Decoded by this event's ABI: `receipt.events` would also look up USDC's type, which on a local chain makes
    # ape-etherscan fetch its chain list from the internet.
    [event] = receipt.decode_logs(nft.ImageRequested)
    say(f"USDC mint: token {event.tokenId} to {buyer.address}, {usd(event.escrow)} USDC in escrow, pulled by the "
        f"buyer's signed authorization; the relayer {relayer.address} sent it and paid the gas")  # fmt: skip
    return event.tokenId


def wait_for_images(nft, tokens: list[int], daemon: subprocess.Popen, log_path: Path, timeout: float) -> bool:
    started = time.monotonic()
    while any(nft.request(t).status == 1 for t in tokens):
        if daemon.poll() is not None:
            say(f"oracle exited with {daemon.returncode}; its log: {log_path}")
            print(log_path.read_text()[-3000:])
            return False
        if time.monotonic() - started > timeout:
            say(f"no image after {timeout:.0f} s; oracle log: {log_path}")
            return False
        print(f"\r[demo] waiting for the oracle... {time.monotonic() - started:5.1f} s", end="", flush=True)
        time.sleep(0.5)
    print()
    say(f"both images set {time.monotonic() - started:.1f} s after the mints")
    return True


def show(nft, token_id: int, client: IpfsClient, full: bool) -> None:
    uri = nft.tokenURI(token_id)
    say(f"token {token_id}: status {STATUS[nft.request(token_id).status]}, tokenURI {uri}")
    metadata = json.loads(client.cat(uri.removeprefix("ipfs://")))
    if full:
        say("metadata: " + json.dumps(metadata, indent=2, ensure_ascii=False))
    image_cid = metadata["image"].removeprefix("ipfs://")
    png = ROOT / "demo-output" / f"genimnft-{token_id}.png"
    png.parent.mkdir(exist_ok=True)
    png.write_bytes(client.cat(image_cid))
    say(f"image: /ipfs/{image_cid} ({png.stat().st_size} bytes), saved to {png}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompt", default="a lighthouse on a basalt cliff at dawn, oil painting")
    parser.add_argument("--tier", type=int, default=0, choices=[0, 1, 2])
    parser.add_argument("--aspect", type=Aspect.parse, default=Aspect.SQUARE, help=f"one of {', '.join(ASPECT_LABELS)}")
    parser.add_argument("--model", default=None, help="diffusers repo id in the local HF cache, or a directory")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="genim-demo-"))
    tiny = args.model is None
    if tiny:
        model = str(build_tiny_pipeline(ROOT / ".cache" / "tiny-sd"))
        say(f"model: tiny random-weight pipeline at {model} (its images are NOISE;"
            " use `make demo MODEL=stabilityai/sd-turbo` or MODEL=/path/to/model for real ones)")  # fmt: skip
    else:
        model = args.model
        say(f"model: {model}")

    with anvil() as chain, ipfs_node() as ipfs:
        say(f"anvil (OP-stack mode) at {chain.url}; IPFS node API at {ipfs.api_url}")
        env = {**os.environ, "APE_FOUNDRY_HOST": chain.url}
        os.environ["APE_FOUNDRY_HOST"] = chain.url
        import ape  # after APE_FOUNDRY_HOST is set, Ape connects to this anvil rather than starting one

        with ape.networks.parse_network_choice(NETWORK):
            accounts = ape.accounts.test_accounts
            oracle = accounts[ORACLE]
            deployment = deploy(env, oracle.address, work)
            say(f"GenImNFT deployed at {deployment['address']} with `ape run deploy`; USDC at {deployment['usdc']}, "
                f"ETH/USD feed at {deployment['eth_usd_feed']}")  # fmt: skip
            config = oracle_config(work, chain.url, deployment, ipfs.api_url, model, tiny)
            log_path = work / "oracle.log"
            daemon = subprocess.Popen(["genim-oracle", "run", "--config", str(config)], cwd=ROOT, env=env,
                                      stdout=log_path.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
            try:
                # A local chain has no explorer to ask for the contract's type: it is this project's.
                nft = ape.project.GenImNFT.at(deployment["address"], fetch_from_explorer=False)
                tokens = [mint_eth(nft, accounts[ETH_BUYER], args), mint_usdc(nft, deployment, accounts[RELAYER], args)]
                if not wait_for_images(nft, tokens, daemon, log_path, args.timeout):
                    return 1
                client = IpfsClient(ipfs.api_url)
                for token_id in tokens:
                    show(nft, token_id, client, full=token_id == tokens[0])
                say(f"oracle credit: {nft.credit(oracle)} wei and {usd(nft.usdcCredit(oracle))} USDC, each escrow less "
                    f"the {nft.feeBps() / 100:g}% fee; oracle log: {log_path}")  # fmt: skip
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=15)
    say("stopped anvil, the IPFS node and the oracle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
