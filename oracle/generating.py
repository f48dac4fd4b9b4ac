"""The single daemon's generate stage: picks a batch of seen jobs, runs it through the Generator in a thread of
its own (the loop keeps following, pinning and submitting meanwhile), writes each image into the state directory
and moves its job to `generated`.

Images that cannot be written yet (a full disk) stay in memory and are written on a later pass: the batch is not
generated again. A daemon that stops, for a signal or a fatal error, stops the generation at its next denoising
step and waits for its thread: a process that exits with torch running in another thread aborts (SIGABRT).
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

from oracle import observe
from oracle.config import OracleConfig
from oracle.faults import crash_point
from oracle.generate import Generated, GenerationError, Generator
from oracle.journal import Job, JobState, Journal
from oracle.progress import GenerationProgress
from oracle.submit import first_line

log = logging.getLogger("genim.daemon")
Advance = Callable[..., None]  # (token_id, state, **journal fields)


class _Stopping(Exception):
    """Raised at the next denoising step of a generation the daemon stops waiting for."""


@dataclass
class _Background:
    """Runs one call in a daemon thread and keeps its result; `GenerationStage.stop` waits for it."""

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


class GenerationStage:
    def __init__(
        self, config: OracleConfig, journal: Journal, generator: Generator, images_dir: Path,
        worth_it: Callable[[Job], bool], seed: Callable[[int], int], advance: Advance,
    ) -> None:  # fmt: skip
        self.config = config
        self.journal = journal
        self.generator = generator
        self.images_dir = images_dir
        self._worth_it = worth_it
        self._seed = seed
        self._advance = advance
        self._generation: _Background | None = None
        self._generating: list[Job] = []  # the batch in flight, or the part of a finished one not yet written
        self._stopping = threading.Event()
        self.progress: GenerationProgress | None = None

    @property
    def busy(self) -> bool:
        """A batch is in flight, or generated and not all written."""
        return self._generation is not None

    def step(self) -> None:
        if self._generation is not None:
            if not self._generation.done.is_set():
                return
            self._finish()
        batch = self._next_batch()
        if batch:
            self._start(batch)

    def stop(self) -> None:
        """Stops the generation in flight at its next denoising step and waits for its thread to end."""
        if self._generation is None or self._generation.done.is_set():
            return
        self._stopping.set()
        token_ids = [job.token_id for job in self._generating]
        while not self._generation.done.wait(10):
            log.warning("waiting for the generation in flight to stop", extra={"token_ids": token_ids})
        log.info("generation stopped", extra={"token_ids": token_ids})

    def image_path(self, token_id: int) -> Path:
        return self.images_dir / f"{token_id}.png"

    def _start(self, batch: list[Job]) -> None:
        tier, aspect = batch[0].tier, batch[0].aspect
        seeds = [self._seed(job.token_id) for job in batch]
        prompts = [job.prompt for job in batch]
        started = time.monotonic()
        settings = self.config.tiers[tier]
        progress = GenerationProgress(self.config.state_dir, [job.token_id for job in batch], tier,
                                      settings.total_steps, settings.expected_seconds,
                                      self.config.progress_log_interval)  # fmt: skip

        def on_step(step: int) -> None:
            if self._stopping.is_set():
                raise _Stopping
            progress.on_step(step)

        def work() -> list[Generated]:
            crash_point("generating", self.config.state_dir)
            images = self.generator.generate(tier, prompts, seeds, aspect, on_step=on_step)
            observe.GENERATION_SECONDS.labels(tier=str(tier)).observe(time.monotonic() - started)
            return images

        for job in batch:
            log.info("generating", extra={"token_id": job.token_id, "tier": tier, "batch": len(batch)})
        self._generating, self.progress = batch, progress
        self._generation = _Background(work).start()

    def _next_batch(self) -> list[Job]:
        batch: list[Job] = []
        for job in self.journal.jobs(JobState.SEEN, limit=64):
            # The cheap local test first: each on-chain check costs three RPC calls.
            if batch and ((job.tier, job.aspect) != (batch[0].tier, batch[0].aspect) or job.attempts):
                continue
            if not self._worth_it(job):
                continue
            batch.append(job)
            # A job that failed before is generated alone, so one bad prompt cannot sink a batch twice.
            if job.attempts or len(batch) >= self.config.generation_batch:
                break
        return batch

    def _finish(self) -> None:
        assert self._generation is not None
        generation = self._generation
        if self.progress is not None:
            self.progress.finish()
            self.progress = None
        if generation.error is None:
            self._write_images(generation.result)
            self._generation = None
            return
        batch = self._generating
        self._generation, self._generating = None, []
        if not isinstance(generation.error, (GenerationError, RuntimeError, ValueError)):
            raise generation.error
        for job in batch:
            attempts = self.journal.count_attempt(job.token_id, first_line(generation.error))
            if attempts >= self.config.max_generation_attempts:
                self._advance(job.token_id, JobState.FAILED, note=f"generation failed {attempts} times")
            else:
                log.warning("generation failed, will retry: %s", first_line(generation.error),
                            extra={"token_id": job.token_id, "attempts": attempts})  # fmt: skip

    def _write_images(self, images: list[Generated]) -> None:
        """Writes each image and moves its job on; a write that fails (a full disk) leaves the rest, in memory,
        for the next pass."""
        while self._generating:
            job, image = self._generating[0], images[0]
            _write_atomically(self.image_path(job.token_id), image.png)
            self._advance(job.token_id, JobState.GENERATED)
            del self._generating[0], images[0]


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a half-written file would hold the space a full disk needs back
        raise
