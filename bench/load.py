"""Load: 500 mints from 20 accounts in bursts against anvil (2 s blocks, OP-stack mode), one daemon, the tiny
model. Prints requests served, time to drain, p50/p95 mint-to-image latency, daemon memory (peak, and after
the first fifth and at the end, to show it does not grow per request), transactions per image, lost and
duplicated; writes bench/results/load.json.

    python bench/load.py [--requests 500] [--accounts 20] [--burst 50] [--burst-every 4]
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import (
    ROOT,
    Minter,
    local_stack,
    oracle_config,
    percentile,
    rss_kib,
    start_daemon,
    watch_images,
    write_config,
)

RESULTS = ROOT / "bench" / "results" / "load.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--burst-every", type=float, default=4.0)
    parser.add_argument("--block-time", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="genim-load-"))
    with local_stack(args.block_time) as stack:
        config = oracle_config(stack.deployment, stack.ipfs, stack.model, work / "state", poll_interval=0.5,
                               batch_wait=1.0, batch_size=32, generation_batch=8)  # fmt: skip
        config_path = write_config(config, work / "oracle.toml")
        daemon = start_daemon(config_path)
        memory: list[tuple[int, int, int]] = []  # (images so far, rss, peak)
        seen: dict[int, float] = {}
        minter = Minter(stack.deployment, args.accounts)
        started = time.time()
        while len(minter.sent) < args.requests:
            minter.burst(min(args.burst, args.requests - len(minter.sent)), tier_of=lambda i: i % 3)
            time.sleep(args.burst_every)
        sent = minter.token_ids()
        all_sent = time.time()

        def sample() -> None:
            memory.append((len(seen), *rss_kib(daemon.pid)))

        seen.update(watch_images(stack.deployment, len(sent), args.timeout, on_poll=sample))
        drained = time.time()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)

        latencies = [seen[t] - sent[t] for t in sent if t in seen]
        events = stack.deployment.image_set_events()
        per_token = Counter(e["args"]["tokenId"] for e in events)
        txs = {e["transactionHash"] for e in events}
        statuses = [stack.deployment.nft.functions.request(t).call()[0] for t in sent]
    fifth = next((m for m in memory if m[0] >= len(sent) // 5), memory[-1])
    report = {
        "requests": len(sent),
        "served": sum(1 for s in statuses if s == 2),
        "lost": sum(1 for s in statuses if s != 2),
        "duplicated": sum(1 for n in per_token.values() if n > 1),
        "minting_seconds": round(all_sent - started, 1),
        "drain_seconds_after_last_mint": round(drained - all_sent, 1),
        "total_seconds": round(drained - started, 1),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "latency_p95_s": round(percentile(latencies, 95), 2),
        "transactions": len(txs),
        "transactions_per_image": round(len(txs) / max(1, len(seen)), 3),
        "daemon_peak_rss_mib": round(max(m[2] for m in memory) / 1024, 1),
        "daemon_rss_mib_after_first_fifth": round(fifth[1] / 1024, 1),
        "daemon_rss_mib_at_end": round(memory[-1][1] / 1024, 1),
        "block_time_s": args.block_time,
        "accounts": args.accounts,
    }
    for key, value in report.items():
        print(f"{key}={value}")
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
