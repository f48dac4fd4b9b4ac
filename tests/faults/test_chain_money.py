"""Faults of the chain and the money: a wrong chain, a lagging RPC, a second operator on the contract, a
drained wallet, a fee spike, and a journal deleted while its transaction waits in the mempool. Real anvil,
js-ipfs and the tiny model throughout; the lagging node is `LaggingView` (tests/faults/proxy.py), a test double
that answers from anvil's own history some blocks back. Each case adds a row to the Reliability table, where
"wasted" counts oracle transactions mined reverted (gas paid for nothing).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter

from genim_devnet.localnet import free_port
from genimnft.contract import Asset, RequestEvent
from oracle import observe
from oracle.journal import JobState, Journal, SentTx
from tests.faults.proxy import RpcProxy
from tests.faults.test_faults import _Miner, mint_batch, oracle_tx_counts, settle_report
from tests.services import ROOT, Deployment, account_key, make_daemon, oracle_config, wait_for, write_config


def _messages(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def _run_cli(config_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oracle.cli", "run", "--config", str(config_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip


def _step_until(daemon, condition, timeout: float = 60) -> bool:
    return wait_for(lambda: (daemon.step(), condition())[1], timeout=timeout, interval=0.05)


def _states(daemon, token_ids) -> list[JobState | None]:
    return [(job.state if (job := daemon.journal.job(t)) else None) for t in token_ids]


# 1. Wrong chain


def test_wrong_chain_or_foreign_journal_refuses_to_start(deployment, devchain, project, ipfs, tiny_model, tmp_path,
                                                         reliability):  # fmt: skip
    """The deployment file names chain 10, the RPC is on 31337: one line, exit 1. Then a journal bound at its
    creation to one contract refuses another contract (a token id means nothing across contracts)."""
    deployment_file = tmp_path / "optimism-mainnet.json"
    deployment_file.write_text(json.dumps({"address": deployment.address, "block": deployment.block, "chain_id": 10}))
    state = tmp_path / "state"
    config = oracle_config(deployment, ipfs, tiny_model, state, contract=None, deployment_file=deployment_file)
    chain_id = deployment.w3.eth.chain_id
    wrong_chain = _run_cli(write_config(config, tmp_path / "wrong-chain.toml"))
    assert wrong_chain.returncode == 1 and "Traceback" not in wrong_chain.stderr
    assert wrong_chain.stderr.strip().splitlines()[-1] == (
        f"genim-oracle: RPC {deployment.url} is on chain {chain_id}, but the deployment file {deployment_file} is on "
        "chain 10"
    )
    # A journal created for contract A ...
    first = make_daemon(oracle_config(deployment, ipfs, tiny_model, state))
    first.journal.close()
    # ... is refused to contract B on the same chain.
    other = Deployment(devchain.url, project.GenImNFT.contract_type)
    foreign = _run_cli(write_config(oracle_config(other, ipfs, tiny_model, state), tmp_path / "other.toml"))
    assert foreign.returncode == 1 and "Traceback" not in foreign.stderr
    assert foreign.stderr.strip().splitlines()[-1] == (
        f"genim-oracle: state_dir {state} holds the journal of contract {deployment.address} on chain {chain_id}, "
        f"not of {other.address} on chain {chain_id}: give this deployment its own state_dir"
    )
    reliability.append({"fault": "wrong chain / another contract's journal", "requests": 0, "lost": 0,
                        "duplicated": 0, "wasted": 0, "recovery_s": 0,
                        "how": "deployment file names chain 10, RPC on 31337; state_dir of another contract",
                        "note": "refused at start, one line, exit 1"})  # fmt: skip


# 2. Lagging RPC


def test_lagging_rpc_never_loses_a_request(deployment, devchain, ipfs, tiny_model, tmp_path, caplog, reliability):
    """Half of the HTTP requests are answered by a node 4 blocks behind (LaggingView): its eth_getLogs is cut at
    its head, its blocks above it are null, its request() reads None for recent mints. Nothing is lost, nothing
    skipped, no mint taken for a reorg."""
    caplog.set_level(logging.INFO)
    for _ in range(6):
        devchain.rpc("evm_mine")  # the lagging view's head is past the deployment
    proxy = RpcProxy(int(devchain.url.rsplit(":", 1)[1]), free_port())
    proxy.start()
    proxy.lag(blocks=4, share=0.5, seed=7)
    miner = _Miner(devchain)
    try:
        daemon = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path, rpc_uri=proxy.url, batch_wait=0))
        daemon.recover()
        token_ids = []
        started = time.monotonic()
        for i in range(8):
            token_ids.append(deployment.mint(account_key(2 + i % 5), f"lagging {i}", i % 3))
            for _ in range(3):
                daemon.step()
        assert wait_for(lambda: (daemon.step(), daemon.journal.counts()["confirmed"] == 8)[1], timeout=90)
        recovery = time.monotonic() - started
    finally:
        miner.stop()
        proxy.stop()
    assert proxy.answered["lagging"] > 20 and proxy.lagging_methods["eth_getLogs"] > 0
    assert _messages(caplog, "node does not hold block"), "the lagging node answered a range end: scan stopped"
    assert not _messages(caplog, "reorganised away")
    assert all(state is JobState.CONFIRMED for state in _states(daemon, token_ids))
    outcome = settle_report(deployment, ipfs, token_ids, tmp_path)
    reliability.append({"fault": "lagging RPC (4 blocks, half the calls)", "requests": 8, **outcome, "wasted": 0,
                        "how": "LaggingView proxy: logs, blocks, eth_call, nonces from 4 blocks back",
                        "recovery_s": round(recovery, 1),
                        "note": "cursor held at the last block the answering node proved"})  # fmt: skip


# 3. Two operators


def test_two_operators_drop_tokens_set_by_the_other(deployment, devchain, ipfs, tiny_model, tmp_path, reliability):
    """Two daemons on one contract, each with its own account and state_dir. A race in one block (both batches
    in the mempool at once) reverts one transaction: its tokens are recorded as set by the other oracle, not as
    earnings. Tokens the other already set are dropped before sending, with no transaction."""
    second = account_key(8)
    deployment.send(deployment.owner, deployment.nft.functions.setOracle(second.address, True))
    token_ids = mint_batch(deployment, 4, "two operators")
    settings = dict(batch_wait=30, batch_size=8)  # one batch of 4, sent once all are pinned
    a = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path / "a", **settings))
    b = make_daemon(oracle_config(deployment, ipfs, tiny_model, tmp_path / "b", account="TEST::8", **settings))
    earnings = observe.EARNINGS.labels(asset="ETH")
    reverted_before, earned_before = observe.REVERTED._value.get(), earnings._value.get()
    devchain.rpc("evm_setAutomine", False)  # both batches wait in the mempool together
    for daemon in (a, b):
        daemon.recover()
        assert _step_until(daemon, lambda d=daemon: d.journal.counts()["submitted"] == 4)
    devchain.rpc("evm_mine")  # one block: the second batch reverts (ImageAlreadySet)
    devchain.rpc("evm_setAutomine", True)
    started = time.monotonic()
    for daemon in (a, b):
        assert daemon.drain(timeout=30)
    recovery = time.monotonic() - started
    assert observe.REVERTED._value.get() - reverted_before == 1, "the reverted transaction is counted"
    winner, loser = (a, b) if a.journal.counts()["confirmed"] == 4 else (b, a)
    assert loser.journal.counts()["set_by_other"] == 4 and loser.journal.counts()["confirmed"] == 0
    assert f"set by oracle {winner.sender.address}" in loser.journal.job(token_ids[0]).note
    # Later mints: the loser has them pinned when the winner sets them; its pre-send check drops them.
    later = mint_batch(deployment, 2, "already set")
    assert wait_for(lambda: (_step_without_submit(loser), loser.journal.counts()["metadata_pinned"] == 2)[1], 60)
    assert winner.drain(timeout=30)
    sent_before = len(loser.journal.txs())
    assert loser.drain(timeout=30)
    assert len(loser.journal.txs()) == sent_before, "nothing sent for tokens the other oracle set"
    assert _states(loser, later) == [JobState.SET_BY_OTHER] * 2
    earned = sum(winner.journal.job(t).escrow for t in token_ids + later)
    assert earnings._value.get() - earned_before == earned, "the loser counts none as its earnings"
    counts = [oracle_tx_counts(_as_oracle(deployment, daemon)) for daemon in (a, b)]
    per_token, reverted = counts[0][0] + counts[1][0], counts[0][1] + counts[1][1]
    assert reverted == 1 and all(per_token[t] == 1 for t in later)
    assert Counter(e["args"]["oracle"] for e in deployment.image_set_events()) == {winner.sender.address: 6}
    reliability.append({"fault": "two operators on one contract", "requests": 6, "lost": 0, "duplicated": 0,
                        "wasted": reverted, "recovery_s": round(recovery, 1),
                        "how": "two daemons; both batches in one block, then tokens set before the second sends",
                        "note": "loser records set_by_other, no earnings; the revert is logged, counted"})  # fmt: skip


def _step_without_submit(daemon) -> None:
    for stage in (daemon._consent, daemon._follow, daemon._generate, daemon._pin):
        stage()


def _as_oracle(deployment, daemon):
    """The deployment as seen from `daemon`'s account (oracle_tx_counts reads `deployment.oracle`)."""
    view = copy.copy(deployment)
    view.oracle = daemon.sender.account
    return view


# 4. Money


def test_drained_wallet_waits_says_it_once_and_resumes_when_funded(
    deployment, devchain, ipfs, tiny_model, tmp_path, caplog, reliability
):
    caplog.set_level(logging.INFO)
    oracle = deployment.oracle.address
    devchain.rpc("anvil_setBalance", oracle, hex(1000))
    token_ids = mint_batch(deployment, 2, "no gas money")
    config = oracle_config(deployment, ipfs, tiny_model, tmp_path / "state", batch_wait=0, low_balance_batches=20)
    daemon = make_daemon(config)
    daemon.recover()
    assert _step_until(daemon, lambda: daemon.journal.notices().get("waiting_for_funds"))
    for _ in range(20):
        daemon.step()
    assert daemon.journal.txs() == [], "nothing signed while the account cannot pay"
    notice = daemon.journal.notices()["waiting_for_funds"]
    assert int(notice["needed_wei"]) > int(notice["balance_wei"]) == 1000
    assert len(_messages(caplog, "waiting for funds")) == 1, "said once"
    assert observe.FUNDS_NEEDED._value.get() == int(notice["needed_wei"])
    shown = subprocess.run([sys.executable, "-m", "oracle.cli", "status", "--config",
                            str(write_config(config, tmp_path / "oracle.toml"))],
                           capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)  # fmt: skip
    status = json.loads(shown.stdout)
    assert status["notices"]["waiting_for_funds"]["needed_wei"] == notice["needed_wei"]
    # Funded for a few batches, under the 20-batch threshold: resumes without a restart, and warns low.
    devchain.rpc("anvil_setBalance", oracle, hex(3 * int(notice["needed_wei"])))
    funded = time.monotonic()
    assert daemon.drain(timeout=30)
    recovery = time.monotonic() - funded
    assert len(daemon.journal.txs()) == 1 and _messages(caplog, "funded again")
    assert "waiting_for_funds" not in daemon.journal.notices()
    assert observe.BALANCE_LOW._value.get() == 1 and _messages(caplog, "pays for fewer than 20 batches")
    outcome = settle_report(deployment, ipfs, token_ids, tmp_path / "state")
    reliability.append({"fault": "wallet drained, then topped up", "requests": 2, **outcome, "wasted": 0,
                        "how": "anvil_setBalance to 1000 wei, later to 3 transactions' worth",
                        "recovery_s": round(recovery, 1),
                        "note": "nothing signed while short; said once; resumed without restart"})  # fmt: skip


def test_fee_spike_replaces_once_up_to_the_cap_then_waits(deployment, devchain, ipfs, tiny_model, tmp_path, caplog,
                                                          reliability):  # fmt: skip
    """Base fee raised to 1e19 wei/gas: one replacement, at max_fee_per_gas (no 25%-a-poll climb), then it waits
    and says so once; when the base fee falls the transaction is mined."""
    caplog.set_level(logging.INFO)
    token_id = deployment.mint(account_key(2), "fee spike", 0)
    cap = 50 * 10**9
    config = oracle_config(deployment, ipfs, tiny_model, tmp_path, tx_timeout=0.3, batch_wait=0, max_fee_per_gas=cap)
    daemon = make_daemon(config)
    devchain.rpc("evm_setAutomine", False)
    daemon.recover()
    assert _step_until(daemon, lambda: daemon.journal.pending_txs() != [])
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**19))
    devchain.rpc("evm_mine")  # a block our transaction cannot enter
    spike = time.monotonic()
    while time.monotonic() - spike < 3:
        daemon.step()
        time.sleep(0.05)
    txs = daemon.journal.txs()
    assert len(txs) == 2 and max(tx.max_fee for tx in txs) == cap, [tx.max_fee for tx in txs]
    assert len(_messages(caplog, "waiting for lower fees")) == 1
    devchain.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**8))
    devchain.rpc("evm_setAutomine", True)
    devchain.rpc("evm_mine")
    calm = time.monotonic()
    assert daemon.drain(timeout=30)
    outcome = settle_report(deployment, ipfs, [token_id], tmp_path)
    reliability.append({"fault": "fee spike above max_fee_per_gas", "requests": 1, **outcome, "wasted": 0,
                        "how": "next base fee set to 1e19 wei/gas; tx_timeout 0.3 s",
                        "recovery_s": round(time.monotonic() - calm, 1),
                        "note": "2 signed (one replacement, at the cap), not one per poll"})  # fmt: skip


def test_journal_stores_any_fee_and_migrates_integer_fees(tmp_path):
    """A fee past SQLite's 64-bit INTEGER (the overflow at 7.4e18 wei/gas) round-trips; an old journal whose fee
    columns are INTEGER is migrated at open with its rows."""
    old = sqlite3.connect(tmp_path / "journal.sqlite3")
    old.execute("CREATE TABLE txs (hash TEXT PRIMARY KEY, nonce INTEGER NOT NULL, raw BLOB NOT NULL, token_ids TEXT"
                " NOT NULL, max_fee INTEGER NOT NULL, priority_fee INTEGER NOT NULL, sent_at REAL NOT NULL,"
                " state TEXT NOT NULL)")  # fmt: skip
    old.execute("INSERT INTO txs VALUES ('0x01', 0, x'00', '[1]', 7400000000000000000, 5, 1.0, 'mined')")
    old.commit()
    old.close()
    journal = Journal(tmp_path)
    huge = SentTx("0x02", 1, b"\x01", [2], 2**255, 2**200, 2.0)
    journal.record_tx(huge)
    assert [(tx.hash, tx.max_fee, tx.priority_fee) for tx in journal.txs()] == [
        ("0x01", 7_400_000_000_000_000_000, 5), ("0x02", 2**255, 2**200)]  # fmt: skip
    assert journal.next_nonce() == 2


def test_journal_from_before_the_usdc_rail_reads_its_escrows_as_eth(tmp_path):
    """A journal written before escrows had an asset gains the column at open: its jobs read as ETH (the only
    rail then), and new USDC jobs keep their asset, so earnings stay apart per asset."""
    old = sqlite3.connect(tmp_path / "journal.sqlite3")
    old.execute("CREATE TABLE jobs (token_id INTEGER PRIMARY KEY, state TEXT NOT NULL, tier INTEGER NOT NULL,"
                " prompt TEXT NOT NULL, requester TEXT NOT NULL, escrow TEXT NOT NULL, deadline INTEGER NOT NULL,"
                " block_number INTEGER NOT NULL, block_hash TEXT NOT NULL, image_cid TEXT, metadata TEXT,"
                " metadata_cid TEXT, tx_hash TEXT, attempts INTEGER NOT NULL DEFAULT 0, note TEXT,"
                " seen_at REAL NOT NULL, updated_at REAL NOT NULL)")  # fmt: skip
    old.execute("INSERT INTO jobs (token_id, state, tier, prompt, requester, escrow, deadline, block_number,"
                " block_hash, seen_at, updated_at) VALUES (1, 'confirmed', 0, 'old', '0xab', '1000000000000000',"
                " 2000000000, 5, '0x05', 1.0, 1.0)")  # fmt: skip
    old.commit()
    old.close()
    journal = Journal(tmp_path)
    assert journal.job(1).asset is Asset.ETH and journal.job(1).escrow == 10**15
    usdc_job = RequestEvent(token_id=2, tier=1, aspect=0, prompt="new", requester="0xcd", escrow=300_000,
                            deadline=2_000_000_000, block_number=6, block_hash="0x06", asset=Asset.USDC)  # fmt: skip
    assert journal.record_scan([usdc_job], 7) == [2]
    journal.advance(2, JobState.CONFIRMED, tx_hash="0x07")
    assert journal.job(2).asset is Asset.USDC
    assert journal.earnings() == {Asset.ETH: (1, 10**15), Asset.USDC: (1, 300_000)}
    journal.close()


# 5. Journal deleted while a transaction waits in the mempool


def test_journal_deleted_while_its_transaction_waits_in_the_mempool(deployment, devchain, ipfs, tiny_model, tmp_path,
                                                                     caplog, reliability):  # fmt: skip
    caplog.set_level(logging.INFO)
    token_ids = mint_batch(deployment, 2, "mempool")
    state = tmp_path / "state"
    config = oracle_config(deployment, ipfs, tiny_model, state, batch_wait=30)  # one batch, once both are pinned
    first = make_daemon(config)
    devchain.rpc("evm_setAutomine", False)
    first.recover()
    assert _step_until(first, lambda: first.journal.counts()["submitted"] == 2)
    first.journal.close()
    shutil.rmtree(state)  # the journal is gone; its transaction waits in the mempool
    second = make_daemon(config)
    second.recover()
    assert _step_until(second, lambda: second.journal.notices().get("mempool"))
    for _ in range(10):
        second.step()
    assert second.journal.txs() == [], "nothing sent while this account has transactions in the mempool"
    assert len(_messages(caplog, "wait in the mempool")) == 1
    devchain.rpc("evm_setAutomine", True)
    devchain.rpc("evm_mine")
    mined = time.monotonic()
    assert second.drain(timeout=30)
    recovery = time.monotonic() - mined
    assert second.journal.txs() == []
    assert _states(second, token_ids) == [JobState.CONFIRMED] * 2, "set by this oracle's earlier transaction"
    per_token, reverted = oracle_tx_counts(deployment)
    assert reverted == 0 and per_token == Counter(dict.fromkeys(token_ids, 1))
    reliability.append({"fault": "journal deleted, tx in the mempool", "requests": 2, "lost": 0, "duplicated": 0,
                        "wasted": 0, "recovery_s": round(recovery, 1),
                        "how": "state_dir removed while automine is off; new daemon on the same account",
                        "note": "waited for the pending nonce; confirmed from ImageSet events"})  # fmt: skip
