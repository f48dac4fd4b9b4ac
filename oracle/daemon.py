"""The pipeline, wired: follow requests, generate, pin image, pin metadata, submit, confirm.

Each stage reads the jobs in its input state from the journal and writes the next state before it moves
on, so the loop can stop (SIGTERM, crash, kill -9) anywhere and resume there. Outages of the RPC or the IPFS
node are waited out; anything unexpected exits the process non-zero.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from requests.exceptions import RequestException
from web3.exceptions import Web3Exception

from genimnft.contract import Chain
from genimnft.ipfs import IpfsClient, IpfsError
from genimnft.metadata import ImageFacts, metadata_bytes, raw_cid
from oracle import observe
from oracle.config import OracleConfig
from oracle.facts import image_facts
from oracle.faults import crash_point
from oracle.generate import Generator, seed_for
from oracle.generating import GenerationStage
from oracle.journal import FINAL_STATES, Job, JobState, Journal, JournalMismatch
from oracle.outages import Outages
from oracle.progress import clear
from oracle.sender import Sender
from oracle.submit import Submitter, first_line

log = logging.getLogger("genim.daemon")
TRANSIENT = (Web3Exception, RequestException, IpfsError, OSError, ValueError)


class StartupError(RuntimeError):
    """A start-up check failed; the message is one line for the operator."""


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
        clear(config.state_dir)  # a file left by a killed run describes no generation now
        self.submitter = Submitter(config, chain, journal, sender, advance=self._advance,
                                   upstream_busy=self._upstream_busy)  # fmt: skip
        self.generation = GenerationStage(config, journal, generator, self.images_dir, self.submitter.still_worth_it,
                                          self._seed, self._advance)  # fmt: skip
        self._last_balance = 0.0
        self._status: dict = {"jobs": {}, "cursor": 0, "last_tick": 0.0, "unreachable": {}}
        self._warned_at: dict[str, float] = {}
        self.outages = Outages(journal.set_notice)

    # start-up

    def preflight(self, load_models: bool = True) -> None:
        """Checks every dependency once; raises StartupError with one clear line."""
        try:  # read in a JSON-RPC batch: the follower needs the node to take them
            self.chain_id = int(self.chain.batch([("eth_chainId", [])])[0], 16)
        except (*TRANSIENT, TypeError, KeyError) as exc:
            raise StartupError(f"RPC {self.config.rpc_uri} does not answer (a batch): {first_line(exc)}") from exc
        expected = self.config.deployment_chain_id()
        if expected is not None and expected != self.chain_id:
            raise StartupError(f"RPC {self.config.rpc_uri} is on chain {self.chain_id}, but the deployment file "
                               f"{self.config.deployment_file} is on chain {expected}")  # fmt: skip
        if not self.chain.has_code():
            raise StartupError(f"no contract at {self.chain.address} on chain {self.chain_id}")
        try:
            authorised = self.chain.is_oracle(self.sender.address)
        except TRANSIENT as exc:
            raise StartupError(f"{self.chain.address} is not a GenImNFT contract: {first_line(exc)}") from exc
        if not authorised:
            raise StartupError(f"account {self.sender.address} is not an authorised oracle of {self.chain.address}")
        try:
            self.journal.bind(self.chain_id, self.chain.address)
        except JournalMismatch as exc:
            raise StartupError(str(exc)) from exc
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
                log.warning("re-broadcast failed: %s", first_line(exc), extra={"tx": tx.hash})
        first = self.config.first_block()
        window_start = max(first, self.journal.next_block(first) - self.config.reorg_window)
        self._follow(from_block=window_start)

    # the loop

    def run(self, stop: threading.Event) -> None:
        self.recover()
        try:
            while not stop.is_set():
                self.step(stop)
                stop.wait(self.config.poll_interval)
        finally:  # a stop or a fatal error alike: the process must not exit with torch running in a thread
            self.generation.stop()
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
                self._warn_while(name, f"{name} waiting out: {first_line(exc)}")
                self.outages.failed(name, exc)
            else:
                self.outages.passed(name)
                if self._warned_at.pop(name, None) is not None:
                    log.info("%s recovered", name)
        self._observe()

    def drain(self, timeout: float) -> bool:
        """Runs the loop until no job is in flight (tests, benchmarks); returns whether it drained."""
        deadline = time.monotonic() + timeout
        self.recover()
        while time.monotonic() < deadline:
            self.step()
            if not self.in_flight() and not self.generation.busy:
                return True
            time.sleep(min(0.1, self.config.poll_interval))
        return False

    def in_flight(self) -> int:
        counts = self.journal.counts()
        return sum(n for state, n in counts.items() if JobState(state) not in FINAL_STATES)

    # stages

    def _follow(self, from_block: int | None = None) -> None:
        """Reads new requests; the cursor moves only past blocks the node answering the logs proved it holds."""
        safe = self.chain.head() - self.config.required_confirmations()
        start = self.journal.next_block(self.config.first_block()) if from_block is None else from_block
        if start > safe:
            return
        found, proven = self.chain.requests_proven(start, safe, self.config.log_range)
        if proven < start:
            return
        for token_id in self.journal.record_scan(found, max(proven + 1, self.journal.next_block(0))):
            job = self.journal.job(token_id)
            log.info("job seen", extra={"token_id": token_id, "state": "seen", "tier": job.tier if job else None})
            crash_point("seen", self.config.state_dir)

    def _consent(self) -> None:
        self.submitter.read_consent()

    def _generate(self) -> None:
        self.generation.step()

    def _pin(self) -> None:
        """Pins image, then metadata, each read back from the node before the job moves on: a node that
        acknowledges an add without storing it, or answers another CID, holds the job here (nothing goes
        on-chain) until it really serves the bytes."""
        for job in self.journal.jobs(JobState.GENERATED):
            png = self.image_path(job.token_id).read_bytes()
            cid = self._pin_verified(png, f"genimnft-{job.token_id}.png", "image")
            self._advance(job.token_id, JobState.IMAGE_PINNED, image_cid=cid)
        for job in self.journal.jobs(JobState.IMAGE_PINNED):
            data = metadata_bytes(self.facts(job))
            cid = self._pin_verified(data, f"genimnft-{job.token_id}.json", "metadata", expected_cid=raw_cid(data))
            self._advance(job.token_id, JobState.METADATA_PINNED, metadata=data.decode(), metadata_cid=cid)

    def _pin_verified(self, data: bytes, filename: str, kind: str, expected_cid: str | None = None) -> str:
        started = time.monotonic()
        cid = self.ipfs.pin(data, filename, self.config.ipfs_verify_timeout, expected_cid)
        observe.PIN_SECONDS.labels(kind=kind).observe(time.monotonic() - started)
        return cid

    def _submit(self) -> None:
        self.submitter.step()

    # helpers

    def _warn_while(self, condition: str, message: str) -> None:
        """One line when a condition starts and one every 30 s while it lasts, not one per pass."""
        if time.time() - self._warned_at.get(condition, 0.0) > 30:
            log.warning(message)
            self._warned_at[condition] = time.time()

    def _upstream_busy(self) -> bool:
        counts = self.journal.counts()
        return self.generation.busy or any(
            counts[s] for s in (JobState.SEEN, JobState.DISPATCHED, JobState.GENERATED, JobState.IMAGE_PINNED)
        )

    def _advance(self, token_id: int, state: JobState, **fields: object) -> None:
        self.journal.advance(token_id, state, **fields)
        if state is not JobState.METADATA_PINNED:
            self.submitter.ready_since.pop(token_id, None)  # bounded memory: only jobs waiting to be sent are tracked
        crash_point(state.value, self.config.state_dir)
        extra = {"token_id": token_id, "state": state.value}
        extra.update({k: v for k, v in fields.items() if k in ("image_cid", "metadata_cid", "tx_hash", "note")})
        log.info("job %s", state.value, extra=extra)

    def _observe(self) -> None:
        counts = self.journal.counts()
        for state, count in counts.items():
            observe.JOBS.labels(state=state).set(count)
        # The HTTP thread reads this snapshot; the SQLite connection stays on the loop's thread.
        self._status = {"jobs": counts, "cursor": self.journal.next_block(0), "last_tick": time.time(),
                        "unreachable": self.outages.current()}  # fmt: skip
        if (progress := self.generation.progress) is not None:
            self._status["generating"] = progress.snapshot()
            self._status["stalled"] = progress.stalled(self.config.stall_factor)
            counts["generating"] = len(progress.token_ids)
            counts["seen"] = max(0, counts.get("seen", 0) - counts["generating"])
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
        return self.generation.image_path(token_id)

    def _seed(self, token_id: int) -> int:
        return seed_for(self.chain_id, self.chain.address, token_id)

    def facts(self, job: Job) -> ImageFacts:
        image = self.image_path(job.token_id)
        return image_facts(
            self.config.tiers[job.tier], token_id=job.token_id, prompt=job.prompt, tier=job.tier, aspect=job.aspect,
            seed=self._seed(job.token_id), png=image.read_bytes(), generated_at=int(image.stat().st_mtime),
            image_cid=job.image_cid or "",
        )  # fmt: skip
