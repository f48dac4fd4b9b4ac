"""The coordinator (workers = "celery"): the daemon with its generate and pin stages handed to GPU workers.

It stays the only holder of the key and of the journal. Its dispatch stage sends each job worth doing to
the workers' queue (the journal records the dispatch first); its collect stage takes the workers' results,
checks each against IPFS, and moves the job to metadata_pinned, where the daemon's own submit stage batches
it into setImages. Delivery is at-least-once; the journal makes its effect exactly-once: a result for a job
that is no longer out (a duplicate, or one past its deadline margin) is dropped, and after a restart or any
sign of a broker outage everything the journal says is out is sent again (a broker may come back without its
disk). Every message on the results queue is checked against the schema (oracle/messages.py) and the job it
names before anything else reads it; one that fails is rejected for good, said in one line and counted.
"""

from __future__ import annotations

import logging
import time

from oracle import observe
from oracle.config import fingerprint, settings_differences, settings_summary
from oracle.daemon import Daemon, StartupError
from oracle.generate import seed_for
from oracle.journal import Job, JobState
from oracle.messages import RejectedMessage, WorkResult, decode_result
from oracle.pool import WorkerPool
from oracle.verify import VerificationError, verify_result
from oracle.wire import BrokerUnavailable, JobOrder, JobSender, ResultQueue, results_queue, task_id

log = logging.getLogger("genim.dispatch")
RESULTS_PER_PASS = 256


class Coordinator(Daemon):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fingerprint = fingerprint(self.config.tiers)
        self.settings = settings_summary(self.config.tiers)
        self.jobs = JobSender(self.config.broker_url, self.fingerprint, on_outage=self._broker_outage)
        self._results: ResultQueue | None = None  # named after the chain id, known after preflight
        self.pool = WorkerPool(self.fingerprint)
        self._resend_all = True  # after a start or a broker outage the queue may lack what the journal has out
        self._chain_now = 0

    def preflight(self, load_models: bool = False) -> None:
        """The daemon's checks without loading any model (the workers do), and the broker's."""
        super().preflight(load_models=False)
        self._results = ResultQueue(self.config.broker_url, results_queue(self.chain_id, self.chain.address),
                                    on_outage=self._broker_outage)  # fmt: skip
        try:
            self.results.check()
        except BrokerUnavailable as exc:
            raise StartupError(str(exc)) from exc
        log.info("coordinating GPU workers", extra={"fingerprint": self.fingerprint, "broker": self._broker()})

    @property
    def results(self) -> ResultQueue:
        assert self._results is not None, "preflight() first"
        return self._results

    # the dispatch stage, in place of the daemon's generate stage

    def _generate(self) -> None:
        self._chain_now = self.chain.timestamp()
        out = self._tend_out()
        for job in self.journal.jobs(JobState.SEEN, limit=max(0, self.config.max_jobs_out - out)):
            if self.submitter.still_worth_it(job):
                self._dispatch(job, job.attempts + 1)

    def _broker_outage(self) -> None:
        """A publish or a take failed, or Celery reconnected under a publish: what was queued may be gone."""
        if not self._resend_all:
            log.warning("broker outage: every job out will be sent again once it answers")
        self._resend_all = True

    def _tend_out(self) -> int:
        """Skips jobs out past their deadline margin, re-sends what timed out (or everything, after a start
        or an outage); returns how many jobs are out."""
        resend_all, self._resend_all = self._resend_all, False
        if resend_all:
            self.jobs.resending_all()
        out = 0
        for job in self.journal.jobs(JobState.DISPATCHED, limit=10_000):
            left = job.deadline - self._chain_now
            if left <= self.config.deadline_margin:
                self._advance(job.token_id, JobState.SKIPPED, note=f"deadline in {left} s while out with the workers")
            elif time.time() - (job.dispatched_at or 0) > self.config.dispatch_timeout:
                self._retry(job, f"no result in {self.config.dispatch_timeout:.0f} s")
            else:
                out += 1
                if resend_all:
                    self._send(job, job.attempts)
        return out

    def _dispatch(self, job: Job, attempt: int) -> None:
        if attempt > self.config.max_dispatch_attempts:
            self._advance(job.token_id, JobState.FAILED, note=f"dispatched {attempt - 1} times: {job.note}")
            return
        self._advance(job.token_id, JobState.DISPATCHED, attempts=attempt, dispatched_at=time.time())
        self._send(job, attempt)

    def _send(self, job: Job, attempt: int) -> None:
        order = JobOrder(job.token_id, attempt, job.tier, job.aspect, job.prompt,
                         seed_for(self.chain_id, self.chain.address, job.token_id), self.fingerprint,
                         self.results.name)  # fmt: skip
        # The queue's expiry is in wall-clock time; the deadline is in chain time.
        expires_at = time.time() + job.deadline - self._chain_now - self.config.deadline_margin
        self.jobs.send(order, task_id(self.chain_id, self.chain.address, order), expires_at)

    def _retry(self, job: Job, why: str) -> None:
        """Back to seen, to be dispatched again next pass (or failed, once out of attempts)."""
        log.warning("job will be dispatched again: %s", why, extra={"token_id": job.token_id, "attempts": job.attempts})
        if job.attempts >= self.config.max_dispatch_attempts:
            self._advance(job.token_id, JobState.FAILED, note=f"dispatched {job.attempts} times; last: {why}")
        else:
            self._advance(job.token_id, JobState.SEEN, note=why)

    # the collect stage, in place of the daemon's pin stage

    def _pin(self) -> None:
        for delivery in self.results.take(RESULTS_PER_PASS):
            try:
                self._collect(decode_result(delivery.body, delivery.content_type, delivery.content_encoding))
            except RejectedMessage as exc:
                delivery.reject()
                observe.RESULTS_REFUSED.labels(reason=exc.reason).inc()
                log.warning("result message rejected (%s): %s", exc.reason, exc)
                continue
            except BaseException:
                delivery.requeue()  # e.g. the IPFS node is down: the result waits in the queue
                raise
            delivery.ack()  # only now: the journal has it

    def _collect(self, result: WorkResult) -> None:
        _, first = self.pool.heard(result.worker, result.fingerprint)
        if result.fingerprint != self.fingerprint:
            self.pool.refused(result.worker)
            observe.RESULTS_REFUSED.labels(reason="fingerprint").inc()
            if first:
                why = refusal(self.settings, self.fingerprint, result)
                log.warning("worker %s refused: %s", result.worker, why)
                self.jobs.tell_refused(result.fingerprint, why)
            if result.kind != "hello":
                self._requeue_job(result.token_id, f"result from worker {result.worker} refused (fingerprint)")
            return
        if result.kind == "hello":
            if first:  # a worker announces itself every 30 s: one line when it is first heard
                log.info("worker %s joined", result.worker, extra={"fingerprint": result.fingerprint})
            return
        job = self.journal.job(result.token_id)
        if job is None or result.attempt > job.attempts:
            raise RejectedMessage("unknown_job", f"token {result.token_id} attempt {result.attempt} was never "
                                                 f"dispatched (from worker {result.worker})")  # fmt: skip
        if (
            job is not None
            and job.state is JobState.DISPATCHED
            and job.deadline - self._chain_now <= self.config.deadline_margin
        ):
            self._advance(job.token_id, JobState.SKIPPED, note=f"result from {result.worker} after the job expired")
            job = self.journal.job(result.token_id)
        if job is None or job.state is not JobState.DISPATCHED:
            # First verified result wins; a late one finds its job skipped (deadline margin passed).
            reason = "expired" if job is not None and job.state is JobState.SKIPPED else "duplicate"
            observe.RESULTS_DROPPED.labels(reason=reason).inc()
            log.info("result dropped (%s)", reason, extra={"token_id": result.token_id, "worker": result.worker,
                                                           "state": job.state.value if job else None})  # fmt: skip
            return
        if result.kind == "failure":
            self.pool.failed(result.worker)
            self._retry(job, f"worker {result.worker} failed: {result.error}")
            return
        try:
            metadata = verify_result(self.ipfs, result, job.prompt, self.generator.size(job.tier, job.aspect))
        except VerificationError as exc:
            self.pool.failed(result.worker)
            self._retry(job, f"result from worker {result.worker} refused: {exc}")
            return
        self._advance(job.token_id, JobState.METADATA_PINNED, image_cid=result.image_cid,
                      metadata=metadata.decode(), metadata_cid=result.metadata_cid)  # fmt: skip
        self.pool.delivered(result.worker)

    def _requeue_job(self, token_id: int, why: str) -> None:
        job = self.journal.job(token_id)
        if job is not None and job.state is JobState.DISPATCHED:
            self._retry(job, why)

    def _observe(self) -> None:
        super()._observe()
        out = self._status["jobs"].get(JobState.DISPATCHED.value, 0)
        observe.JOBS_OUT.set(out)
        self._status = {**self._status, "workers": self.pool.snapshot(), "jobs_out": out}

    def _broker(self) -> str:
        return self.config.broker_url.rsplit("@", 1)[-1]


def refusal(ours: dict[str, str], our_fingerprint: str, result: WorkResult) -> str:
    """Why a worker is refused, naming the settings that differ when its announcement carries them."""
    prints = f"fingerprint {result.fingerprint}, this coordinator's {our_fingerprint}"
    if not result.settings:
        return f"its model and tier settings differ from this coordinator's ({prints}; it names no settings)"
    differ = settings_differences(ours, result.settings)
    shown = "; ".join(differ[:8]) + (f"; and {len(differ) - 8} more" if len(differ) > 8 else "")
    return f"its model and tier settings differ from this coordinator's: {shown or 'none named'} ({prints})"
