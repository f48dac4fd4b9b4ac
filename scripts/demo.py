"""The main job, end to end on this machine: `make demo`.

Starts anvil (OP-stack mode), deploys GenImNFT with `ape run deploy`, mints one request and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.localnet import anvil  # noqa: E402

NETWORK = "optimism:local:foundry"
STATUS = ["None", "Pending", "Fulfilled", "Refunded"]


def deploy(env: dict[str, str], oracle: str) -> dict:
    cmd = ["ape", "run", "deploy", "--network", NETWORK, "--account", "TEST::0", "--oracle", oracle,
           "--placeholder-uri", "ipfs://placeholder-pending-image"]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return json.loads((ROOT / "deployments/optimism-local.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompt", default="a lighthouse on a basalt cliff at dawn, oil painting")
    parser.add_argument("--tier", type=int, default=0, choices=[0, 1, 2])
    parser.add_argument("--model", default=None, help="diffusers model id or directory (used by the oracle)")
    args = parser.parse_args()

    with anvil() as chain:
        print(f"[demo] anvil (OP-stack mode) at {chain.url}")
        env = {**os.environ, "APE_FOUNDRY_HOST": chain.url}
        os.environ["APE_FOUNDRY_HOST"] = chain.url
        import ape  # after APE_FOUNDRY_HOST is set, Ape connects to this anvil rather than starting one

        with ape.networks.parse_network_choice(NETWORK):
            oracle, buyer = ape.accounts.test_accounts[1], ape.accounts.test_accounts[2]
            record = deploy(env, oracle.address)
            print(f"[demo] deployed at {record['address']}")
            nft = ape.project.GenImNFT.at(record["address"])
            receipt = nft.mint(args.prompt, args.tier, sender=buyer, value=nft.price(args.tier))
            [event] = receipt.events.filter(nft.ImageRequested)
            request = nft.request(event.tokenId)
            print(f"[demo] minted token {event.tokenId} for {event.escrow} wei; prompt: {event.prompt!r}")
            print(
                f"[demo] request: status={STATUS[request.status]} tier={request.tier} "
                f"escrow={request.escrow} deadline={request.deadline}"
            )
            print(f"[demo] tokenURI: {nft.tokenURI(event.tokenId)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
