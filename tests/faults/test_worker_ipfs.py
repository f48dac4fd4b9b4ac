"""A GPU worker's IPFS node that lies: LyingIpfsNode (tests/faults/ipfs_double.py, a test double of the
misbehaviour) stands between the worker and the real js-ipfs node; the coordinator reaches the real node itself.

A stale CID (the previous image's) must never reach the chain, where setImage cannot be undone: the worker reads
every add back and compares the bytes, as the single daemon does, and the coordinator checks that the image the
metadata names hashes to the sha256 the worker computed from the bytes it generated. CIDs spelled in base58 are
the same CIDs and are accepted.
"""

from __future__ import annotations

import hashlib
import json
import time

from genim_devnet.generator_double import HoldingGeneratorDouble
from genimnft.ipfs import IpfsClient
from genimnft.metadata import raw_cid
from oracle.config import OracleConfig, fingerprint, load_config
from oracle.journal import Journal
from oracle.messages import WorkResult
from tests.faults.ipfs_double import LyingIpfsNode
from tests.faults.test_faults import mint_batch, settle_report, wrong_images
from tests.faults.test_workers import (
    coordinator_ready,
    journal_counts,
    log_entries,
    pool_config,
    pool_images,
    processes,
    publish_raw,
    purge,
    row,
)
from tests.services import (
    account_key,
    confirmed_count,
    oracle_config,
    start_daemon,
    start_worker,
    wait_for,
    write_config,
)


def worker_config(deployment, ipfs, model, tmp_path, broker, node: LyingIpfsNode):
    """The workers' config: the coordinator's, but their IPFS API is the lying node."""
    config = oracle_config(deployment, ipfs, model, tmp_path / "state", workers="celery", broker_url=broker.url,
                           ipfs_api=node.url)  # fmt: skip
    return write_config(config, tmp_path / "worker.toml")


def forge_stale_result(deployment, ipfs, broker, config, token_id: int, decoy_cid: str, image: bytes) -> None:
    """What an honest worker would send through a stale node if it did not read back: metadata naming the decoy
    image, with the sha256 of the image really generated for the token."""
    journal = Journal(config.state_dir)
    try:
        job = journal.job(token_id)
    finally:
        journal.close()
    document = {"name": f"GenImNFT #{token_id}", "description": job.prompt, "image": f"ipfs://{decoy_cid}"}
    metadata = json.dumps(document, separators=(",", ":")).encode()
    assert IpfsClient(ipfs.api_url).add(metadata, "forged.json") == raw_cid(metadata)
    forged = WorkResult(kind="result", worker="stale-node", fingerprint=fingerprint(config.tiers), token_id=token_id,
                        attempt=job.attempts, image_cid=decoy_cid, metadata_cid=raw_cid(metadata),
                        digest=hashlib.sha256(metadata).hexdigest(),
                        image_sha256=hashlib.sha256(image).hexdigest())  # fmt: skip
    publish_raw(broker, deployment, forged.model_dump())


def test_worker_ipfs_node_answers_stale_image_cids(deployment, ipfs, tiny_model, tmp_path, broker, reliability):
    node = LyingIpfsNode(ipfs.api_url).start()
    try:
        config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker, max_dispatch_attempts=1000)
        workers_path = worker_config(deployment, ipfs, tiny_model, tmp_path, broker, node)
        config = load_config(config_path, model=OracleConfig)
        expected = pool_images(deployment, config_path)
        coordinator_log = config_path.with_suffix(".log")
        with processes(start_daemon(config_path)) as running:
            coordinator_ready(config_path)
            # Every request in one tier and aspect: a stale image has the right size, only its bytes are wrong.
            token_ids = [deployment.mint(account_key(2 + i), f"stale cid {i}", 0) for i in range(3)]
            assert wait_for(lambda: journal_counts(tmp_path / "state").get("dispatched", 0) == 3, timeout=60)
            # The previous image the node will answer with: another token's image, of the same size.
            [decoy] = HoldingGeneratorDouble(config.tiers, hold=0).generate(0, ["decoy"], [7])
            decoy_cid = IpfsClient(node.url).add(decoy.png, "decoy.png")
            node.set_mode("stale")
            # The coordinator's own check, whatever the worker does: the image named is not the one generated.
            forge_stale_result(deployment, ipfs, broker, config, token_ids[0], decoy_cid, expected(token_ids[0]))
            assert wait_for(lambda: refused_as_not_generated(coordinator_log), timeout=30), "forged result accepted"
            running.append(start_worker(workers_path, "w1", hold=0.2))
            # A retried job may find its own image as "the previous one" (right by chance); any other is refused.
            assert wait_for(lambda: len(worker_failures(tmp_path / "w1.log")) >= 4, timeout=90)
            set_so_far = [event["args"]["tokenId"] for event in deployment.image_set_events()]
            assert wrong_images(deployment, ipfs, set_so_far, expected) == 0, "a stale image went on-chain"
            failures = len(worker_failures(tmp_path / "w1.log"))
            node.set_mode("base58")  # honest again, in another spelling
            honest = time.monotonic()
            assert wait_for(lambda: confirmed_count(tmp_path / "state") == 3, timeout=90)
            recovery = time.monotonic() - honest
    finally:
        node.stop()
    outcome = settle_report(deployment, ipfs, token_ids, None, images=expected)
    purge(broker, deployment, config_path)
    note = f"{failures} attempts refused by the worker's read-back, a forged stale result refused by the coordinator"
    how = ("LyingIpfsNode between the worker and js-ipfs answers each image add with the previous image's CID "
           "(until 4 refusals), then honestly in base58")  # fmt: skip
    reliability.append(row("worker's IPFS answers a stale image CID", how, 3, outcome, recovery, note=note))


def test_worker_ipfs_node_answers_in_base58(deployment, ipfs, tiny_model, tmp_path, broker, reliability):
    node = LyingIpfsNode(ipfs.api_url, "base58").start()
    try:
        config_path = pool_config(deployment, ipfs, tiny_model, tmp_path, broker)  # max_dispatch_attempts = 3
        workers_path = worker_config(deployment, ipfs, tiny_model, tmp_path, broker, node)
        with processes(start_daemon(config_path), start_worker(workers_path, "w1", hold=0.2)):
            coordinator_ready(config_path)
            started = time.monotonic()
            token_ids = mint_batch(deployment, 3, "base58")
            assert wait_for(lambda: confirmed_count(tmp_path / "state") == 3, timeout=60), "base58 CIDs refused"
            served = time.monotonic() - started
    finally:
        node.stop()
    assert not worker_failures(tmp_path / "w1.log"), "the same CIDs in base58 are not a failure"
    outcome = settle_report(deployment, ipfs, token_ids, None, images=pool_images(deployment, config_path))
    purge(broker, deployment, config_path)
    reliability.append(row("worker's IPFS answers CIDs in base58", "LyingIpfsNode between the worker and js-ipfs "
                           "spells every CID in base58btc", 3, outcome, 0,
                           note=f"no outage: all set {served:.1f} s after the first mint"))  # fmt: skip


def worker_failures(log_path) -> list[dict]:
    return [e for e in log_entries(log_path) if str(e.get("msg", "")).startswith("job failed")]


def refused_as_not_generated(log_path) -> bool:
    return any("is not the image this job generated" in str(e.get("note", "")) + str(e.get("msg", ""))
               for e in log_entries(log_path))  # fmt: skip
