"""The main job, end to end on this machine: `make demo` (or `make demo MODEL=stabilityai/sd-turbo`).

Starts anvil (OP-stack mode) and a js-ipfs node, deploys GenImNFT with `ape run deploy`, starts the oracle
daemon, mints one request, waits until its image is set, prints the result, and stops what it started.
Without MODEL it builds a tiny random-weight pipeline: its images are noise, but every step is the real one.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genim_devnet.localnet import anvil, ipfs_node  # noqa: E402
from genim_devnet.tiny_model import build_tiny_pipeline  # noqa: E402
from genimnft.aspects import ASPECT_LABELS, Aspect  # noqa: E402
from genimnft.ipfs import IpfsClient  # noqa: E402

NETWORK = "optimism:local:foundry"
STATUS = ["None", "Pending", "Fulfilled", "Refunded"]


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def deploy(env: dict[str, str], oracle: str) -> dict:
    cmd = ["ape", "run", "deploy", "--network", NETWORK, "--account", "TEST::0", "--oracle", oracle,
           "--placeholder-uri", "ipfs://placeholder-pending-image"]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads((ROOT / "deployments/optimism-local.json").read_text())


def oracle_config(work: Path, rpc: str, deployment: dict, ipfs_api: str, model: str, tiny: bool) -> Path:
    sizes = {0: 64, 1: 96, 2: 128} if tiny else {0: 512, 1: 768, 2: 1024}
    lines = [f'network = "{NETWORK}"', f'rpc_uri = "{rpc}"', f'contract = "{deployment["address"]}"',
             'account = "TEST::1"', f'ipfs_api = "{ipfs_api}"', f'state_dir = "{work / "oracle-state"}"',
             f"start_block = {deployment['block']}", "poll_interval = 0.5", "metrics_port = 0"]  # fmt: skip
    for tier, size in sizes.items():
        lines += [f"[tiers.{tier}]", f'model = "{model}"', f"width = {size}", f"height = {size}", "steps = 1"]
        lines += ["size_step = 16"] if tiny else []  # the tiny model's latent grid; real models keep 64
    path = work / "oracle.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


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
            oracle, buyer = ape.accounts.test_accounts[1], ape.accounts.test_accounts[2]
            deployment = deploy(env, oracle.address)
            say(f"GenImNFT deployed at {deployment['address']} with `ape run deploy`")
            config = oracle_config(work, chain.url, deployment, ipfs.api_url, model, tiny)
            log_path = work / "oracle.log"
            daemon = subprocess.Popen(["genim-oracle", "run", "--config", str(config)], cwd=ROOT, env=env,
                                      stdout=log_path.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
            try:
                nft = ape.project.GenImNFT.at(deployment["address"])
                receipt = nft.mint(args.prompt, args.tier, args.aspect, sender=buyer, value=nft.price(args.tier))
                [event] = receipt.events.filter(nft.ImageRequested)
                token_id = event.tokenId
                say(
                    f"minted token {token_id}, {event.escrow} wei in escrow; prompt bound on-chain: {event.prompt!r},"
                    f" aspect {Aspect(event.aspect).label}"
                )
                started = time.monotonic()
                while (request := nft.request(token_id)).status == 1:
                    if daemon.poll() is not None:
                        say(f"oracle exited with {daemon.returncode}; its log: {log_path}")
                        print(log_path.read_text()[-3000:])
                        return 1
                    if time.monotonic() - started > args.timeout:
                        say(f"no image after {args.timeout:.0f} s; oracle log: {log_path}")
                        return 1
                    print(f"\r[demo] waiting for the oracle... {time.monotonic() - started:5.1f} s", end="", flush=True)
                    time.sleep(0.5)
                print()
                uri = nft.tokenURI(token_id)
                say(f"status: {STATUS[request.status]} after {time.monotonic() - started:.1f} s")
                say(f"tokenURI: {uri}")
                client = IpfsClient(ipfs.api_url)
                metadata = json.loads(client.cat(uri.removeprefix("ipfs://")))
                say("metadata: " + json.dumps(metadata, indent=2, ensure_ascii=False))
                image_cid = metadata["image"].removeprefix("ipfs://")
                png = ROOT / "demo-output" / f"genimnft-{token_id}.png"
                png.parent.mkdir(exist_ok=True)
                png.write_bytes(client.cat(image_cid))
                say(f"image: /ipfs/{image_cid} ({png.stat().st_size} bytes), saved to {png}")
                say(f"oracle credit: {nft.credit(oracle)} wei; oracle log: {log_path}")
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=15)
    say("stopped anvil, the IPFS node and the oracle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
