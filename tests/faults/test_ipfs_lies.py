"""An IPFS node that lies about an add: nothing goes on-chain until the node really serves the bytes, and no
request is lost. The node is a real js-ipfs node; only its answers pass through LyingIpfsNode (a test double
of the misbehaviour)."""

from __future__ import annotations

import time

import pytest

from oracle.journal import JobState
from tests.faults.ipfs_double import LyingIpfsNode
from tests.faults.test_faults import mint_batch, settle_report
from tests.services import make_daemon, oracle_config, wait_for

CASES = {
    "drop": ("IPFS acknowledges add, stores nothing", "add answered with only-hash; read-back times out"),
    "rewrite": ("IPFS rewrites the image CID", "add answered with a decoy CID the node serves"),
}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_lying_ipfs_node_holds_every_job_until_the_bytes_are_served(
    deployment, ipfs, tiny_model, tmp_path, mode, reliability
):
    double = LyingIpfsNode(ipfs.api_url, mode).start()
    try:
        config = oracle_config(deployment, ipfs, tiny_model, tmp_path, ipfs_api=double.url, ipfs_verify_timeout=1)
        daemon = make_daemon(config)
        token_ids = mint_batch(deployment, 3, f"ipfs {mode}")
        lying_until = time.monotonic() + 8
        while time.monotonic() < lying_until:
            daemon.step()
        counts = daemon.journal.counts()
        assert double.adds >= 3, "the daemon tried to pin through the lying node"
        assert counts[JobState.GENERATED] == 3, f"every job waits at 'generated', none pinned: {counts}"
        assert not deployment.image_set_events(), "nothing may go on-chain while the node lies"
        # The node comes right, answering the same CIDs in base58: equal as CIDs, so accepted.
        double.set_mode("base58")
        honest = time.monotonic()
        assert wait_for(lambda: (daemon.step(), daemon.journal.counts()[JobState.CONFIRMED] == 3)[1], timeout=60)
        recovery = time.monotonic() - honest
    finally:
        double.stop()
    for token_id in token_ids:
        assert daemon.journal.job(token_id).image_cid.startswith("bafkrei"), "CIDs are stored in base32"
    outcome = settle_report(deployment, ipfs, token_ids, tmp_path)
    fault, how = CASES[mode]
    reliability.append({"fault": fault, "how": f"LyingIpfsNode proxy: {how}; then base58 spellings",
                        "requests": 3, **outcome, "recovery_s": round(recovery, 1)})  # fmt: skip
