"""Scaling of the GPU worker pool (workers = "celery"): 1, 2, 4, 8 and 16 workers on one RabbitMQ broker,
anvil with 2 s blocks in OP-stack mode, a js-ipfs node and one coordinator, all on this machine.

Each worker is a real `genim-oracle worker` process (Celery, -P solo, prefetch 1) whose generator is
HoldingGeneratorDouble: it holds each job for `--hold` seconds, as a GPU would, and uses no CPU meanwhile,
so the run measures the coordination (dispatch, broker, pinning, verification, journal), not torch.

images/s: results verified by the coordinator (metadata fetched back from IPFS and checked) per second, from
the first dispatch to the last verified result. Settle time: first dispatch to the last image confirmed
on-chain. Ideal for N workers is N / hold; efficiency = images/s / (N x one worker's images/s). Each run
mints min(--requests, --per-worker x N) requests before the coordinator starts, so that a full run stays
near 15 minutes here (--per-worker 0: --requests for every N). Coordinator CPU per image comes from
/proc, from its start-up done to the last image confirmed (its idle polling included); broker messages
per image are the jobs the coordinator sent plus the results and announcements it
took. `--tiny` adds 1 vs 2 workers running the real tiny diffusers model on the CPU.

    python bench/scale.py [--workers 1,2,4,8,16] [--hold 3.0] [--requests 500] [--per-worker 32] [--tiny 40]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from harness import ROOT, Minter, local_stack, oracle_config, start_daemon, write_config

from genim_devnet.broker import rabbitmq
from oracle.journal import Journal
from tests.services import start_worker, wait_for

RESULTS = ROOT / "bench" / "results" / "scale.json"


def log_entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")] if path.exists() else []


def has_line(path: Path, message: str) -> bool:
    return any(e.get("msg") == message for e in log_entries(path))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def confirmed(state: Path) -> int:
    journal = Journal(state)
    try:
        return journal.counts()["confirmed"]
    finally:
        journal.close()


def one_run(stack, broker, workers: int, requests: int, hold: float | None, work: Path) -> dict:
    """Starts `workers` workers, mints `requests`, then runs a coordinator until every image is confirmed."""
    run = work / f"n{workers}-{'tiny' if hold is None else 'double'}"
    run.mkdir(parents=True)
    chain = stack.deployment.w3
    config = oracle_config(stack.deployment, stack.ipfs, stack.model, run / "state", workers="celery",
                           broker_url=broker.url, start_block=chain.eth.block_number, poll_interval=0.1,
                           batch_size=64, batch_wait=1.0, max_jobs_out=max(64, 4 * workers))  # fmt: skip
    config_path = write_config(config, run / "oracle.toml")
    env = {"OMP_NUM_THREADS": "1"} if hold is None else {}
    pool = [start_worker(config_path, f"w{i}", hold, **env) for i in range(workers)]
    coordinator = None
    try:
        announced = lambda: sum(has_line(run / f"w{i}.log", "announced") for i in range(workers))  # noqa: E731
        assert wait_for(lambda: announced() == workers, timeout=300), "workers did not start"
        minter = Minter(stack.deployment, 20)
        for _ in range(0, requests, 100):
            minter.burst(min(100, requests - len(minter.sent)))
        minter.token_ids()
        coordinator = start_daemon(config_path)
        ready = lambda: has_line(config_path.with_suffix(".log"), "coordinating GPU workers")  # noqa: E731
        assert wait_for(ready, timeout=300, interval=0.05), "the coordinator did not start"
        cpu_at_start = cpu_seconds(coordinator.pid)  # imports and preflight are not per-image work
        assert wait_for(lambda: confirmed(run / "state") == requests, timeout=3600, interval=0.5)
        cpu = cpu_seconds(coordinator.pid) - cpu_at_start
    finally:
        for process in [*pool, *([coordinator] if coordinator else [])]:
            process.send_signal(signal.SIGTERM)
        for process in [*pool, *([coordinator] if coordinator else [])]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    entries = log_entries(config_path.with_suffix(".log"))
    stamps = {msg: [e["ts"] for e in entries if e.get("msg") == msg]
              for msg in ("job dispatched", "job metadata_pinned", "job confirmed")}  # fmt: skip
    first = min(stamps["job dispatched"])
    verified = stamps["job metadata_pinned"]
    taken = sum(1 for e in entries if str(e.get("msg", "")).startswith(("result dropped", "worker ")))
    return {
        "workers": workers,
        "requests": requests,
        "images_per_s": round(len(verified) / (max(verified) - first), 3),
        "settle_s": round(max(stamps["job confirmed"]) - first, 1),
        "coordinator_cpu_ms_per_image": round(1000 * cpu / requests, 1),
        "broker_messages_per_image": round((len(stamps["job dispatched"]) + len(verified) + taken) / requests, 2),
    }


def ipfs_rates(api_url: str, count: int = 200) -> dict:
    """One client, one at a time: adds (pinned) and cats per second of small blobs on the local node."""
    from genimnft.ipfs import IpfsClient

    client = IpfsClient(api_url)
    started = time.monotonic()
    cids = [client.add(os.urandom(1024), "probe.bin") for _ in range(count)]
    added = time.monotonic()
    for cid in cids:
        client.cat(cid)
    done = time.monotonic()
    return {"adds_per_s": round(count / (added - started), 1), "cats_per_s": round(count / (done - added), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4,8,16")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds each job holds a worker")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--per-worker", type=int, default=32)
    parser.add_argument("--tiny", type=int, default=40, help="requests for 1 vs 2 tiny-model workers (0: skip)")
    args = parser.parse_args()

    counts = [int(n) for n in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="genim-scale-"))
    rows, tiny = [], []
    with local_stack(block_time=2.0) as stack, rabbitmq() as broker:
        ipfs = ipfs_rates(stack.ipfs.api_url)
        print(json.dumps({"ipfs": ipfs}), flush=True)
        for n in counts:
            requests = min(args.requests, args.per_worker * n) if args.per_worker else args.requests
            rows.append(one_run(stack, broker, n, requests, args.hold, work))
            print(json.dumps(rows[-1]), flush=True)
        for n in (1, 2) if args.tiny else ():
            tiny.append(one_run(stack, broker, n, args.tiny, None, work))
            print(json.dumps({"tiny_model": True, **tiny[-1]}), flush=True)
    one = rows[0]["images_per_s"] / rows[0]["workers"]
    report = {
        "images_per_s": {str(r["workers"]): r["images_per_s"] for r in rows},
        "efficiency": {str(r["workers"]): round(r["images_per_s"] / (r["workers"] * one), 3) for r in rows},
        "hold_s": args.hold,
        "ipfs": ipfs,
        "runs": rows,
        "tiny_model": tiny,
    }
    print(f"\nhold {args.hold} s per job (generator double); ideal per worker {1 / args.hold:.3f} images/s")
    print("| workers | requests | images/s | ideal | efficiency | settle (s) | coordinator CPU ms/image | msgs/image |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['requests']} | {r['images_per_s']} | {r['workers'] / args.hold:.2f} | "
              f"{report['efficiency'][str(r['workers'])]} | {r['settle_s']} | {r['coordinator_cpu_ms_per_image']} | "
              f"{r['broker_messages_per_image']} |")  # fmt: skip
    for r in tiny:
        print(f"tiny model, {r['workers']} worker(s): {r['images_per_s']} images/s, settle {r['settle_s']} s")
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
