"""A full disk under the single daemon while it generates (real tmpfs mounts, filled by the test; skipped where
this user may not mount).

- The journal's disk fills while a batch is inside torch: the next journal write fails, and the daemon stops the
  generation at its next denoising step, waits for its thread, and exits 1 with one `genim-oracle:` line. Exiting
  with torch still running in a thread aborts the process instead ("terminate called without an active
  exception", SIGABRT).
- Only the images' disk is full: the daemon keeps running, keeps the generated images in memory and writes them
  once there is room. The batch is generated once and said once, not regenerated (and "recovered") every pass.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from pathlib import Path

from tests.faults.test_faults import mint_batch, settle_report, stop
from tests.faults.test_workers import generating, log_entries
from tests.oracle.test_operator_errors import tmpfs
from tests.services import account_key, confirmed_count, oracle_config, start_daemon, wait_for, write_config

PAGE = 4096


def fill(disk: Path) -> Path:
    """Writes one file until the filesystem refuses another page; deleting it frees the disk."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as handle:
        while True:
            handle.write(b"\0" * PAGE)
    return filler


def slow_config(deployment, ipfs, model, state: Path, steps: int, size: int = 64, **overrides):
    """Tier 0 at `size` pixels and `steps` denoising steps: a generation that lasts a known while on this CPU."""
    config = oracle_config(deployment, ipfs, model, state, **overrides)
    tier = config.tiers[0].model_copy(update={"steps": steps, "width": size, "height": size})
    return config.model_copy(update={"tiers": {**config.tiers, 0: tier}})


def test_journal_disk_fills_while_generating_exits_1_with_one_line(deployment, ipfs, tiny_model, tmp_path, reliability):
    with tmpfs(tmp_path / "disk", "size=16m") as disk:
        state = disk / "state"
        # About 15 s in torch here; progress goes to its file once a minute (not during the fault).
        config = slow_config(deployment, ipfs, tiny_model, state, steps=400, size=256, progress_log_interval=60)
        config_path = write_config(config, tmp_path / "oracle.toml")
        log_path = config_path.with_suffix(".log")
        process = start_daemon(config_path)
        try:
            token_ids = mint_batch(deployment, 1, "before the disk fills")
            assert wait_for(lambda: generating(log_path), timeout=90)
            filler = fill(disk)
            token_ids += mint_batch(deployment, 1, "its record finds the disk full")
            code = process.wait(timeout=90)
        finally:
            with contextlib.suppress(Exception):
                stop(process)
        operator = [line for line in log_path.read_text().splitlines() if not line.startswith("{")]
        assert code != -signal.SIGABRT, f"aborted: {operator}"
        assert code == 1 and len(operator) == 1 and operator[0].startswith("genim-oracle: "), operator
        assert "database or disk is full" in operator[0] and "free space" in operator[0], operator[0]
        assert any(e.get("msg") == "generation stopped" for e in log_entries(log_path)), "exited without waiting"
        # Room again, and a restart (fast settings now): both requests served, nothing lost.
        filler.unlink()
        fast = write_config(slow_config(deployment, ipfs, tiny_model, state, steps=1), tmp_path / "oracle.toml")
        restarted = time.monotonic()
        process = start_daemon(fast)
        try:
            assert wait_for(lambda: confirmed_count(state) == 2, timeout=90)
            recovery = time.monotonic() - restarted
        finally:
            stop(process)
        outcome = settle_report(deployment, ipfs, token_ids, state)
    reliability.append({"fault": "journal's disk full while generating", "how": "tmpfs state_dir filled while a "
                        "batch runs in torch (400 steps), then a mint: the journal write fails", "requests": 2,
                        **outcome, "recovery_s": round(recovery, 1),
                        "note": "exit 1 with one line after the generation stopped at its next step; restart after "
                                "freeing the disk"})  # fmt: skip


def test_images_disk_full_generates_the_batch_once(deployment, ipfs, tiny_model, tmp_path, reliability):
    state = tmp_path / "state"
    state.mkdir()
    with tmpfs(state / "images", "size=256k") as images:  # the images on their own (full) disk, the journal not
        filler = fill(images)
        config = slow_config(deployment, ipfs, tiny_model, state, steps=1)
        config_path = write_config(config, tmp_path / "oracle.toml")
        log_path = config_path.with_suffix(".log")
        process = start_daemon(config_path)
        try:
            token_ids = [deployment.mint(account_key(2 + i), f"images have no room {i}", 0) for i in range(2)]
            assert wait_for(lambda: waiting_out(log_path), timeout=90), "the image write never failed"
            time.sleep(10)  # the daemon keeps running, disk still full
            assert process.poll() is None
            entries = log_entries(log_path)
            generated = Counter(generating(log_path))
            assert generated and max(generated.values()) == 1, f"generated again: {generated}"
            assert len(waiting_out(log_path)) == 1, "said once"
            assert not [e for e in entries if e.get("msg") == "generate recovered"]
            filler.unlink()
            freed = time.monotonic()
            assert wait_for(lambda: confirmed_count(state) == 2, timeout=60)
            recovery = time.monotonic() - freed
        finally:
            stop(process)
        outcome = settle_report(deployment, ipfs, token_ids, state)
    reliability.append({"fault": "images' disk full, daemon keeps running", "how": "tmpfs under state_dir/images "
                        "filled before 2 mints; freed 10 s after the first failed write", "requests": 2, **outcome,
                        "recovery_s": round(recovery, 1),
                        "note": "generated once, one warning; the images kept in memory until written"})  # fmt: skip


def waiting_out(log_path: Path) -> list[dict]:
    return [e for e in log_entries(log_path) if str(e.get("msg", "")).startswith("generate waiting out")]
