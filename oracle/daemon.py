"""The pipeline, wired: follow requests, generate, pin image, pin metadata, submit, confirm.

Each stage reads the jobs in its input state from the journal and writes the next state before it moves
on, so the loop can stop (SIGTERM, crash, kill -9) anywhere and resume there. Outages of the RPC or the IPFS
node are waited out; anything unexpected exits the process non-zero.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from requests.exceptions import RequestException
from web3.exceptions import ContractLogicError, Web3Exception

from genimnft.contract import Chain, Status
from genimnft.ipfs import IpfsClient, IpfsError
from genimnft.metadata import ImageFacts, metadata_bytes, metadata_digest, raw_cid
from oracle import observe
from oracle.config import OracleConfig
from oracle.facts import image_facts
from oracle.faults import crash_point
from oracle.generate import Generated, GenerationError, Generator, seed_for
from oracle.journal import FINAL_STATES, Job, JobState, Journal, SentTx
from oracle.sender import Sender

log = logging.getLogger("genim.daemon")
TRANSIENT = (Web3Exception, RequestException, IpfsError, OSError, ValueError)


class StartupError(RuntimeError):
    """A start-up check failed; the message is one line for the operator."""


@dataclass
class _Background:
    """Runs one call in a daemon thread (it never blocks shutdown) and keeps its result."""

    fn: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> _Background:
        threading.Thread(target=self._run, name="genim-generate", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


class Daemon:
    def __init__(
        self, config: OracleConfig, chain: Chain, journal: Journal, ipfs: IpfsClient, generator: Generator,
        sender: Sender,
    ) -> None:  # fmt: skip
        self.config = config
        self.chain = chain
        self.journal = journal
        self.ipfs = ipfs
        self.generator = generator
        self.sender = sender
        self.images_dir = config.state_dir / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.chain_id = 0
        self._generation: _Background | None = None
        self._generating: list[Job] = []
        self._ready_since: dict[int, float] = {}
        self._single_submits = False
        self._serves_from: int | None = None
        self._last_balance = 0.0
        self._status: dict = {"jobs": {}, "cursor": 0, "last_tick": 0.0}
        self._warned_at: dict[str, float] = {}

    # start-up

    def preflight(self, load_models: bool = True) -> None:
        """Checks every dependency once; raises StartupError with one clear line."""
        try:
            self.chain_id = self.chain.chain_id()
        except TRANSIENT as exc:
            raise StartupError(f"RPC {self.config.rpc_uri} does not answer: {_first_line(exc)}") from exc
        if not self.chain.has_code():
            raise StartupError(f"no contract at {self.chain.address} on chain {self.chain_id}")
        try:
            authorised = self.chain.is_oracle(self.sender.address)
        except TRANSIENT as exc:
            raise StartupError(f"{self.chain.address} is not a GenImNFT contract: {_first_line(exc)}") from exc
        if not authorised:
            raise StartupError(f"account {self.sender.address} is not an authorised oracle of {self.chain.address}")
        try:
            version = self.ipfs.version()
        except IpfsError as exc:
            raise StartupError(f"IPFS node {self.config.ipfs_api} does not answer: {exc}") from exc
        if load_models:
            for tier in sorted(self.config.tiers):
                self.generator.load(tier)
        log.info(
            "ready",
            extra={
                "chain_id": self.chain_id,
                "contract": self.chain.address,
                "oracle": self.sender.address,
                "ipfs": version,
                "device": self.generator.device,
            },
        )

    def recover(self) -> None:
        """After a restart: re-broadcast signed transactions, and re-scan the reorg window. (A job whose mint
        block was reorganised away is caught before its generation and before its submission.)"""
        for tx in self.journal.pending_txs():
            log.info("re-broadcasting", extra={"tx": tx.hash, "nonce": tx.nonce, "token_ids": tx.token_ids})
            try:
                self.sender.rebroadcast(tx)
            except TRANSIENT as exc:
                log.warning("re-broadcast failed: %s", _first_line(exc), extra={"tx": tx.hash})
        first = self.config.first_block()
        window_start = max(first, self.journal.next_block(first) - self.config.reorg_window)
        self._follow(from_block=window_start)

    # the loop

    def run(self, stop: threading.Event) -> None:
        self.recover()
        while not stop.is_set():
            self.step(stop)
            stop.wait(self.config.poll_interval)
        log.info("stopped", extra={"jobs": self.journal.counts()})

    def step(self, stop: threading.Event | None = None) -> None:
        """One pass over every stage; an outage of the RPC or IPFS is logged and waited out."""
        for stage in (self._consent, self._follow, self._generate, self._pin, self._submit):
            if stop is not None and stop.is_set():
                return
            name = stage.__name__.strip("_")
            try:
                stage()
            except TRANSIENT as exc:
                self._warn_while(name, f"{name} waiting out: {_first_line(exc)}")
            else:
                if self._warned_at.pop(name, None) is not None:
                    log.info("%s recovered", name)
        self._observe()

    def drain(self, timeout: float) -> bool:
        """Runs the loop until no job is in flight (tests, benchmarks); returns whether it drained."""
        deadline = time.monotonic() + timeout
        self.recover()
        while time.monotonic() < deadline:
            self.step()
            if not self.in_flight() and self._generation is None:
                return True
            time.sleep(min(0.1, self.config.poll_interval))
        return False

    def in_flight(self) -> int:
        counts = self.journal.counts()
        return sum(n for state, n in counts.items() if JobState(state) not in FINAL_STATES)

    # stages

    def _follow(self, from_block: int | None = None) -> None:
        safe = self.chain.head() - self.config.required_confirmations()
        start = self.journal.next_block(self.config.first_block()) if from_block is None else from_block
        if start > safe:
            return
        found = self.chain.requests_between(start, safe, self.config.log_range)
        for token_id in self.journal.record_scan(found, max(safe + 1, self.journal.next_block(0))):
            job = self.journal.job(token_id)
            log.info("job seen", extra={"token_id": token_id, "state": "seen", "tier": job.tier if job else None})
            crash_point("seen", self.config.state_dir)

    def _consent(self) -> None:
        """Reads, once a pass, the first token this oracle may settle: tokens minted before it was (last)
        authorised, or while it is revoked, can never be settled by it (the contract's consent at mint)."""
        serves_from = self.chain.serves_from(self.sender.address)
        if serves_from != self._serves_from and self._serves_from is not None:
            log.warning("authorisation changed: this oracle now settles tokens from %d (0: revoked)", serves_from)
        self._serves_from = serves_from

    def _generate(self) -> None:
        if self._generation is not None:
            if not self._generation.done.is_set():
                return
            self._finish_generation()
        batch = self._next_generation_batch()
        if not batch:
            return
        tier, aspect = batch[0].tier, batch[0].aspect
        seeds = [seed_for(self.chain_id, self.chain.address, job.token_id) for job in batch]
        prompts = [job.prompt for job in batch]
        started = time.monotonic()

        def work() -> list[Generated]:
            crash_point("generating", self.config.state_dir)
            images = self.generator.generate(tier, prompts, seeds, aspect)
            observe.GENERATION_SECONDS.labels(tier=str(tier)).observe(time.monotonic() - started)
            return images

        for job in batch:
            log.info("generating", extra={"token_id": job.token_id, "tier": tier, "batch": len(batch)})
        self._generating = batch
        self._generation = _Background(work).start()

    def _next_generation_batch(self) -> list[Job]:
        batch: list[Job] = []
        for job in self.journal.jobs(JobState.SEEN, limit=64):
            # The cheap local test first: each on-chain check costs three RPC calls.
            if batch and ((job.tier, job.aspect) != (batch[0].tier, batch[0].aspect) or job.attempts):
                continue
            if not self._still_worth_it(job):
                continue
            batch.append(job)
            # A job that failed before is generated alone, so one bad prompt cannot sink a batch twice.
            if job.attempts or len(batch) >= self.config.generation_batch:
                break
        return batch

    def _finish_generation(self) -> None:
        assert self._generation is not None
        generation, batch = self._generation, self._generating
        self._generation, self._generating = None, []
        if generation.error is not None:
            if not isinstance(generation.error, (GenerationError, RuntimeError, ValueError)):
                raise generation.error
            for job in batch:
                attempts = self.journal.count_attempt(job.token_id, _first_line(generation.error))
                if attempts >= self.config.max_generation_attempts:
                    self._advance(job.token_id, JobState.FAILED, note=f"generation failed {attempts} times")
                else:
                    log.warning("generation failed, will retry: %s", _first_line(generation.error),
                                extra={"token_id": job.token_id, "attempts": attempts})  # fmt: skip
            return
        for job, image in zip(batch, generation.result, strict=True):
            _write_atomically(self.image_path(job.token_id), image.png)
            self._advance(job.token_id, JobState.GENERATED)

    def _pin(self) -> None:
        for job in self.journal.jobs(JobState.GENERATED):
            started = time.monotonic()
            cid = self.ipfs.add(self.image_path(job.token_id).read_bytes(), f"genimnft-{job.token_id}.png")
            observe.PIN_SECONDS.labels(kind="image").observe(time.monotonic() - started)
            self._advance(job.token_id, JobState.IMAGE_PINNED, image_cid=cid)
        for job in self.journal.jobs(JobState.IMAGE_PINNED):
            data = metadata_bytes(self.facts(job))
            started = time.monotonic()
            cid = self.ipfs.add(data, f"genimnft-{job.token_id}.json")
            observe.PIN_SECONDS.labels(kind="metadata").observe(time.monotonic() - started)
            if cid != raw_cid(data):
                raise IpfsError(f"IPFS answered CID {cid} for metadata whose raw CID is {raw_cid(data)}")
            self._advance(job.token_id, JobState.METADATA_PINNED, metadata=data.decode(), metadata_cid=cid)

    def _submit(self) -> None:
        pending = self.journal.pending_txs()
        if pending:
            self._settle([tx for tx in pending if tx.nonce == pending[0].nonce])
            return
        limit = 1 if self._single_submits else self.config.batch_size
        ready: list[Job] = []
        for job in self.journal.jobs(JobState.METADATA_PINNED):
            if self._still_worth_it(job):
                ready.append(job)
                if len(ready) >= limit:
                    break
        now = time.time()
        for job in ready:
            self._ready_since.setdefault(job.token_id, now)
        if not ready:
            return
        oldest = min(self._ready_since[job.token_id] for job in ready)
        if len(ready) < limit and now - oldest < self.config.batch_wait and self._upstream_busy():
            return
        ids = [job.token_id for job in ready]
        digests = [metadata_digest(job.metadata or b"") for job in ready]
        try:
            self.sender.simulate(ids, digests)
        except ContractLogicError as exc:
            # Someone else's transaction changed a request between our read and now: go one by one.
            self._warn_while("simulate", f"simulation reverted ({_first_line(exc)}); submitting singly")
            self._single_submits = True
            return
        self._warned_at.pop("simulate", None)
        tx = self.sender.send(ids, digests)
        self._single_submits = False
        for token_id in ids:
            self._ready_since.pop(token_id, None)  # record_tx moved these jobs without _advance
            log.info("submitted", extra={"token_id": token_id, "state": "submitted", "tx": tx.hash})
        crash_point("submitted", self.config.state_dir)

    def _settle(self, txs: list[SentTx]) -> None:
        outcome = self.sender.outcome(txs)
        latest = max(txs, key=lambda tx: tx.sent_at)
        # Our own transaction counts only once it is as deep as the requests we act on: a reorg that drops
        # it before then sends us back to "not mined", and it is re-broadcast below.
        confirmed_depth = self.chain.head() - self.config.required_confirmations()
        if outcome.mined and outcome.tx_hash and outcome.block_number > confirmed_depth:
            return
        if not outcome.mined:
            if time.time() - latest.sent_at > self.config.tx_timeout:
                self._replace(latest)
            elif not self.sender.known(txs):
                log.warning("transaction dropped; re-broadcasting", extra={"tx": latest.hash, "nonce": latest.nonce})
                try:
                    self.sender.rebroadcast(latest)
                except TRANSIENT as exc:  # e.g. its fee cap is now below the base fee
                    log.warning("re-broadcast refused (%s); replacing", _first_line(exc), extra={"tx": latest.hash})
                    self._replace(latest)
            return
        # Every job first, the transaction last: if the RPC fails half-way, the next pass settles it again.
        token_ids = {token_id for tx in txs for token_id in tx.token_ids}
        for token_id in sorted(token_ids):
            self._reconcile(token_id, tx_hash=outcome.tx_hash if outcome.success else None)
        self.journal.close_txs(latest.nonce, outcome.tx_hash)
        observe.GAS_USED.inc(outcome.gas_used)
        observe.TXS.labels(outcome="success" if outcome.success else "reverted_or_dropped").inc()

    def _replace(self, stuck: SentTx) -> None:
        jobs = [self.journal.job(token_id) for token_id in stuck.token_ids]
        digests = [metadata_digest(job.metadata or b"") for job in jobs if job]
        self.sender.replace(stuck, stuck.token_ids, digests)
        observe.TXS.labels(outcome="replaced").inc()

    def _reconcile(self, token_id: int, tx_hash: str | None) -> None:
        """Sets the job's state from what the chain says now about its request."""
        job = self.journal.job(token_id)
        if job is None or job.state in FINAL_STATES:
            return
        ours = metadata_digest(job.metadata or b"")
        request = self.chain.request(token_id)
        if request.status is Status.FULFILLED and request.metadata_digest == ours:
            self._advance(token_id, JobState.CONFIRMED, tx_hash=tx_hash or job.tx_hash)
            observe.EARNINGS.inc(job.escrow)
        elif request.status is Status.PENDING and request.deadline - time.time() > self.config.deadline_margin:
            self._advance(token_id, JobState.METADATA_PINNED, tx_hash=None)
        else:
            self._advance(token_id, JobState.SKIPPED, note=f"request is {request.status.name.lower()} on-chain")

    # helpers

    def _still_worth_it(self, job: Job) -> bool:
        """Reads the request on-chain; a job no longer pending, or too close to its deadline, is skipped. A job
        whose mint block left the canonical chain is dropped and its blocks are read again."""
        if self.chain.block_hash(job.block_number) != job.block_hash:
            self.journal.rewind(job.token_id, job.block_number)
            log.warning("request's block was reorganised away; re-reading from block %d", job.block_number,
                        extra={"token_id": job.token_id, "state": "dropped"})  # fmt: skip
            return False
        if self._serves_from is not None and (self._serves_from == 0 or job.token_id < self._serves_from):
            why = "this oracle is revoked" if self._serves_from == 0 else f"it serves tokens from {self._serves_from}"
            self._advance(job.token_id, JobState.SKIPPED, note=f"minted without this oracle's consent: {why}")
            return False
        request = self.chain.request(job.token_id)
        if request.status is Status.FULFILLED and job.metadata is not None:
            self._reconcile(job.token_id, None)
            return False
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

    def _warn_while(self, condition: str, message: str) -> None:
        """One line when a condition starts and one every 30 s while it lasts, not one per pass."""
        if time.time() - self._warned_at.get(condition, 0.0) > 30:
            log.warning(message)
            self._warned_at[condition] = time.time()

    def _upstream_busy(self) -> bool:
        counts = self.journal.counts()
        return self._generation is not None or any(
            counts[s] for s in (JobState.SEEN, JobState.DISPATCHED, JobState.GENERATED, JobState.IMAGE_PINNED)
        )

    def _advance(self, token_id: int, state: JobState, **fields: object) -> None:
        self.journal.advance(token_id, state, **fields)
        if state is not JobState.METADATA_PINNED:
            self._ready_since.pop(token_id, None)  # bounded memory: only jobs waiting to be sent are tracked
        crash_point(state.value, self.config.state_dir)
        extra = {"token_id": token_id, "state": state.value}
        extra.update({k: v for k, v in fields.items() if k in ("image_cid", "metadata_cid", "tx_hash", "note")})
        log.info("job %s", state.value, extra=extra)

    def _observe(self) -> None:
        counts = self.journal.counts()
        for state, count in counts.items():
            observe.JOBS.labels(state=state).set(count)
        # The HTTP thread reads this snapshot; the SQLite connection stays on the loop's thread.
        self._status = {"jobs": counts, "cursor": self.journal.next_block(0), "last_tick": time.time()}
        observe.CURSOR.set(self.journal.next_block(0))
        observe.LAST_TICK.set(time.time())
        if time.time() - self._last_balance > 30:
            try:
                observe.BALANCE.set(self.sender.balance())
                self._last_balance = time.time()
            except TRANSIENT:
                pass

    def status(self) -> dict:
        return dict(self._status)

    def image_path(self, token_id: int) -> Path:
        return self.images_dir / f"{token_id}.png"

    def facts(self, job: Job) -> ImageFacts:
        image = self.image_path(job.token_id)
        return image_facts(
            self.config.tiers[job.tier], token_id=job.token_id, prompt=job.prompt, tier=job.tier, aspect=job.aspect,
            seed=seed_for(self.chain_id, self.chain.address, job.token_id), png=image.read_bytes(),
            generated_at=int(image.stat().st_mtime), image_cid=job.image_cid or "",
        )  # fmt: skip


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0][:300]
