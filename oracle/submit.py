"""The submit stage: pinned jobs go on-chain in one setImages transaction, which is then settled (confirmed,
handed back, or replaced when stuck), under the money rules. It also owns the request check that the generate
stage uses too: may this oracle settle the token (consent at mint), is it still pending, is there time.

- Nothing is signed that the account cannot pay for, or above `max_fee_per_gas`: the stage waits, says so
  once (with the balance needed; `genim-oracle status` shows it), and resumes when funded.
- A transaction is replaced only after `tx_timeout`, and never above `max_fee_per_gas`.
- Nothing is submitted while this account has transactions in the mempool that the journal does not know
  (a deleted journal, a `withdraw`): they are waited for.
- Tokens already set by anyone are dropped before a batch is sent, and after a revert; a token another
  oracle set is recorded as `set_by_other`, not as earnings. Reverted transactions are logged and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from web3.exceptions import ContractLogicError

from genimnft.contract import Chain, Status
from genimnft.metadata import metadata_digest
from oracle import observe
from oracle.config import OracleConfig
from oracle.faults import crash_point
from oracle.journal import FINAL_STATES, Job, JobState, Journal, SentTx
from oracle.sender import FeeCapReached, InsufficientFunds, Sender

log = logging.getLogger("genim.submit")
NO_MONEY = (InsufficientFunds, FeeCapReached)
BALANCE_CHECK_SECONDS = 30.0


class StaleRead(ValueError):
    """The node answered from behind the chain (a lagging node): the answer is read again on a later pass."""


@dataclass
class Conditions:
    """Conditions the operator is told about once when they begin (or every `repeat` s) and once when they end;
    while one lasts, the journal holds it for `genim-oracle status`."""

    journal: Journal
    since: dict[str, float] = field(default_factory=dict)
    facts: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.journal.notices():  # left by an earlier run: they describe a running daemon
            self.journal.set_notice(name, None)

    def begin(self, name: str, message: str, repeat: float | None = None, **facts: object) -> None:
        last = self.since.get(name)
        if last is None or (repeat is not None and time.time() - last > repeat):
            log.warning(message, extra=facts)
            self.since[name] = time.time()
        if self.facts.get(name) != (notice := {"message": message, **facts}):
            self.journal.set_notice(name, notice)
            self.facts[name] = notice

    def end(self, name: str, message: str) -> None:
        if self.since.pop(name, None) is not None:
            log.info(message)
            self.journal.set_notice(name, None)
            self.facts.pop(name, None)


class Submitter:
    def __init__(
        self, config: OracleConfig, chain: Chain, journal: Journal, sender: Sender,
        advance: Callable[..., None], upstream_busy: Callable[[], bool],
    ) -> None:  # fmt: skip
        self.config = config
        self.chain = chain
        self.journal = journal
        self.sender = sender
        self._advance = advance
        self._upstream_busy = upstream_busy
        self.ready_since: dict[int, float] = {}
        self.conditions = Conditions(journal)
        self.serves_from: int | None = None
        self._single_submits = False
        self._balance_checked_at = 0.0

    def step(self) -> None:
        pending = self.journal.pending_txs()
        if pending:
            self.settle([tx for tx in pending if tx.nonce == pending[0].nonce])
            return
        if time.time() - self._balance_checked_at > BALANCE_CHECK_SECONDS:
            self.check_balance()
        ready = self._ready()
        if not ready or self._waits_for_company(ready) or not self._mempool_clear():
            return
        ids = [job.token_id for job in ready]
        digests = [metadata_digest(job.metadata or b"") for job in ready]
        try:
            self.sender.simulate(ids, digests)
        except ContractLogicError as exc:
            # Someone else's transaction changed a request between our read and now: go one by one.
            self.conditions.begin("simulate", f"simulation reverted ({first_line(exc)}); submitting singly", 30)
            self._single_submits = True
            return
        self.conditions.end("simulate", "simulation passes again")
        try:
            tx = self.sender.send(ids, digests, self.config.max_fee_per_gas)
        except NO_MONEY as exc:
            self._no_money(exc)
            return
        self._money_back()
        self._single_submits = False
        for token_id in ids:
            self.ready_since.pop(token_id, None)  # record_tx moved these jobs without advance()
            log.info("submitted", extra={"token_id": token_id, "state": "submitted", "tx": tx.hash})
        crash_point("submitted", self.config.state_dir)
        self.check_balance()

    def settle(self, txs: list[SentTx]) -> None:
        outcome = self.sender.outcome(txs)
        latest = max(txs, key=lambda tx: tx.sent_at)
        # Our own transaction counts only once it is as deep as the requests we act on: a reorg that drops
        # it before then sends us back to "not mined", and it is re-broadcast below.
        confirmed_depth = self.chain.head() - self.config.required_confirmations()
        if outcome.mined and outcome.tx_hash and outcome.block_number > confirmed_depth:
            return
        if not outcome.mined:
            self._unmined(txs, latest)
            return
        token_ids = sorted({token_id for tx in txs for token_id in tx.token_ids})
        if outcome.tx_hash and not outcome.success:
            log.warning("transaction reverted; re-reading its tokens", extra={"tx": outcome.tx_hash,
                        "nonce": latest.nonce, "token_ids": token_ids})  # fmt: skip
            observe.REVERTED.inc()
        # Every job first, the transaction last: if the RPC fails half-way, the next pass settles it again.
        for token_id in token_ids:
            self.reconcile(token_id, tx_hash=outcome.tx_hash if outcome.success else None)
        self.journal.close_txs(latest.nonce, outcome.tx_hash)
        observe.GAS_USED.inc(outcome.gas_used)
        label = "success" if outcome.success else "reverted" if outcome.tx_hash else "dropped"
        observe.TXS.labels(outcome=label).inc()

    def reconcile(self, token_id: int, tx_hash: str | None) -> None:
        """Sets the job's state from the chain: `tx_hash` is our transaction that succeeded (setImages is all or
        nothing, so it set every token it names); without it, the request is read."""
        job = self.journal.job(token_id)
        if job is None or job.state in FINAL_STATES:
            return
        if tx_hash is not None:
            self._advance(token_id, JobState.CONFIRMED, tx_hash=tx_hash)
            observe.EARNINGS.labels(asset=job.asset.name).inc(job.escrow)
            return
        request = self.chain.request(token_id)
        if request.status is Status.FULFILLED:
            self._record_setter(job)
        elif request.status is Status.NONE:
            raise StaleRead(f"token {token_id} reads as never minted: the node lags; reading it again")
        elif request.status is Status.PENDING and request.deadline - time.time() > self.config.deadline_margin:
            self._advance(token_id, JobState.METADATA_PINNED, tx_hash=None)
        else:
            self._advance(token_id, JobState.SKIPPED, note=f"request is {request.status.name.lower()} on-chain")

    def read_consent(self) -> None:
        """Reads, once a pass, the first token this oracle may settle: tokens minted before it was (last)
        authorised, or while it is revoked, can never be settled by it (the contract's consent at mint)."""
        serves_from = self.chain.serves_from(self.sender.address)
        if serves_from != self.serves_from and self.serves_from is not None:
            log.warning("authorisation changed: this oracle now settles tokens from %d (0: revoked)", serves_from)
        self.serves_from = serves_from

    def still_worth_it(self, job: Job) -> bool:
        """Reads the request on-chain; a job no longer pending, or too close to its deadline, is skipped. A job
        whose mint block left the canonical chain is dropped and its blocks are read again."""
        block_hash = self.chain.block_hash(job.block_number)
        if block_hash is None:
            return False  # the node answering lags behind the mint block: not a reorg; read again next pass
        if block_hash != job.block_hash:
            self.journal.rewind(job.token_id, job.block_number)
            log.warning("request's block was reorganised away; re-reading from block %d", job.block_number,
                        extra={"token_id": job.token_id, "state": "dropped"})  # fmt: skip
            return False
        if self.serves_from is not None and (self.serves_from == 0 or job.token_id < self.serves_from):
            why = "this oracle is revoked" if self.serves_from == 0 else f"it serves tokens from {self.serves_from}"
            self._advance(job.token_id, JobState.SKIPPED, note=f"minted without this oracle's consent: {why}")
            return False
        request = self.chain.request(job.token_id)
        if request.status is Status.FULFILLED:
            self.reconcile(job.token_id, None)  # set by anyone: dropped here, recorded by whom
            return False
        if request.status is Status.NONE:
            return False  # the mint block is canonical (above), so the node answering lags: read again next pass
        if request.status is not Status.PENDING:
            self._advance(job.token_id, JobState.SKIPPED, note=f"request is {request.status.name.lower()} on-chain")
            return False
        left = request.deadline - self.chain.timestamp()
        if left <= self.config.deadline_margin:
            self._advance(
                job.token_id, JobState.SKIPPED, note=f"deadline in {left} s, margin {self.config.deadline_margin} s"
            )
            return False
        return True

    def check_balance(self) -> None:
        """Warns (log, metric, status) while the balance pays for fewer than `low_balance_batches` full batches."""
        self._balance_checked_at = time.time()
        batches = self.config.low_balance_batches
        if not batches:
            return
        balance = self.sender.balance()
        threshold = batches * self.sender.batch_cost(self.config.batch_size, self.config.max_fee_per_gas)
        observe.BALANCE.set(balance)
        observe.LOW_BALANCE_THRESHOLD.set(threshold)
        observe.BALANCE_LOW.set(int(balance < threshold))
        if balance < threshold:
            self.conditions.begin("low_balance", f"balance {balance} wei pays for fewer than {batches} batches "
                                  f"({threshold} wei at today's fees): top up {self.sender.address}",
                                  balance_wei=str(balance), threshold_wei=str(threshold))  # fmt: skip
        else:
            self.conditions.end("low_balance", "balance above the low-balance threshold again")

    # helpers

    def _ready(self) -> list[Job]:
        """Jobs to send now, re-read on-chain (tokens already set by anyone drop out here)."""
        limit = 1 if self._single_submits else self.config.batch_size
        ready: list[Job] = []
        for job in self.journal.jobs(JobState.METADATA_PINNED):
            if self.still_worth_it(job):
                ready.append(job)
                if len(ready) >= limit:
                    break
        now = time.time()
        for job in ready:
            self.ready_since.setdefault(job.token_id, now)
        return ready

    def _waits_for_company(self, ready: list[Job]) -> bool:
        limit = 1 if self._single_submits else self.config.batch_size
        oldest = min(self.ready_since[job.token_id] for job in ready)
        return len(ready) < limit and time.time() - oldest < self.config.batch_wait and self._upstream_busy()

    def _mempool_clear(self) -> bool:
        waiting = self.sender.mempool_nonces()
        if waiting:
            self.conditions.begin("mempool", f"{waiting} transaction(s) of {self.sender.address} wait in the mempool "
                                  "that this journal did not send (a deleted journal, a withdraw): submitting after "
                                  "they are mined", 30, transactions=waiting)  # fmt: skip
            return False
        self.conditions.end("mempool", "no foreign transaction in the mempool any more; submitting")
        return True

    def _unmined(self, txs: list[SentTx], latest: SentTx) -> None:
        try:
            if time.time() - latest.sent_at > self.config.tx_timeout:
                self._replace(latest)
            elif not self.sender.known(txs):
                log.warning("transaction dropped; re-broadcasting", extra={"tx": latest.hash, "nonce": latest.nonce})
                self.sender.rebroadcast(latest)  # a refusal (fee cap under the base fee) waits for tx_timeout
            else:
                return
        except NO_MONEY as exc:
            self._no_money(exc)
            return
        self._money_back()

    def _replace(self, stuck: SentTx) -> None:
        jobs = [self.journal.job(token_id) for token_id in stuck.token_ids]
        digests = [metadata_digest(job.metadata or b"") for job in jobs if job]
        self.sender.replace(stuck, stuck.token_ids, digests, self.config.max_fee_per_gas)
        observe.TXS.labels(outcome="replaced").inc()

    def _record_setter(self, job: Job) -> None:
        """A fulfilled token: ours (sent by an earlier journal, say) is confirmed; another oracle's is not ours."""
        event = self.chain.image_set(job.token_id, job.block_number, self.config.log_range)
        if event is None:
            raise StaleRead(f"token {job.token_id} reads fulfilled but the node has no ImageSet event for it yet")
        if event.oracle == self.sender.address:
            self._advance(job.token_id, JobState.CONFIRMED, tx_hash="0x" + event.tx_hash.removeprefix("0x"))
            observe.EARNINGS.labels(asset=job.asset.name).inc(job.escrow)
        else:
            note = f"set by oracle {event.oracle} in 0x{event.tx_hash.removeprefix('0x')}"
            self._advance(job.token_id, JobState.SET_BY_OTHER, note=note)

    def _no_money(self, exc: InsufficientFunds | FeeCapReached) -> None:
        if isinstance(exc, InsufficientFunds):
            observe.FUNDS_NEEDED.set(exc.needed)
            self.conditions.begin("waiting_for_funds", f"waiting for funds: {exc}; top up {self.sender.address}",
                                  needed_wei=str(exc.needed), balance_wei=str(exc.balance))  # fmt: skip
        else:
            self.conditions.begin("fee_cap", f"waiting for lower fees: {exc}")

    def _money_back(self) -> None:
        observe.FUNDS_NEEDED.set(0)
        self.conditions.end("waiting_for_funds", "funded again; submitting")
        self.conditions.end("fee_cap", "fees under max_fee_per_gas again; submitting")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0][:300]
