"""Progress of the generation in flight: a step callback that logs at most every few seconds and sets a metric,
a small file in the state directory that `genim-oracle status` reads (its jobs show as `generating`), and the
stall test behind `/health`."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

from oracle import observe

log = logging.getLogger("genim.progress")
PROGRESS_FILE = "progress.json"


class GenerationProgress:
    """One batched generation call, from its start to its last denoising step."""

    def __init__(
        self, state_dir: Path, token_ids: list[int], tier: int, steps: int, expected_s: float, log_interval: float
    ) -> None:
        self.path = state_dir / PROGRESS_FILE
        self.token_ids = token_ids
        self.tier = tier
        self.steps = steps
        self.expected_s = expected_s
        self.log_interval = log_interval
        self.started_at = time.time()
        self.step = 0
        self._reported = 0.0
        self._write()

    def on_step(self, step: int) -> None:
        """Called by the pipeline (from the generation thread) after each denoising step."""
        self.step = step
        observe.GENERATION_STEP.labels(tier=str(self.tier)).set(step)
        observe.GENERATION_STEPS.labels(tier=str(self.tier)).inc()
        if time.monotonic() - self._reported >= self.log_interval:
            self._reported = time.monotonic()
            log.info("generation progress", extra=self.snapshot())
            with contextlib.suppress(OSError):  # the file only informs `status`: a full disk must not fail the images
                self._write()

    def stalled(self, factor: float) -> bool:
        """Past `factor` times what the tier is expected to take for this batch."""
        return time.time() - self.started_at > factor * self.expected_s * len(self.token_ids)

    def snapshot(self) -> dict:
        return {"token_ids": self.token_ids, "tier": self.tier, "step": self.step, "steps": self.steps,
                "elapsed_s": round(time.time() - self.started_at, 1), "started_at": self.started_at}  # fmt: skip

    def finish(self) -> None:
        observe.GENERATION_STEP.labels(tier=str(self.tier)).set(0)
        clear(self.path.parent)

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.path)


def clear(state_dir: Path) -> None:
    (state_dir / PROGRESS_FILE).unlink(missing_ok=True)


def read_progress(state_dir: Path, jobs: dict[str, int]) -> dict:
    """For `status`: the jobs of the generation in flight move from `seen` to `generating`."""
    try:
        snapshot = json.loads((state_dir / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    generating = len(snapshot.get("token_ids", []))
    jobs["generating"] = generating
    jobs["seen"] = max(0, jobs.get("seen", 0) - generating)
    return {"generating": snapshot}
