"""`genim-oracle`: run the daemon, show its status, test the model alone, withdraw earnings."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from oracle.config import ConfigError, OracleConfig, default_tiers, load_config
from oracle.journal import AlreadyRunning, Journal

log = logging.getLogger("genim.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genim-oracle", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "follow requests and fulfil them until stopped"),
                       ("status", "jobs by state, cursor, credit waiting to be withdrawn"),
                       ("withdraw", "withdraw the oracle's credit to its account")):  # fmt: skip
        command = sub.add_parser(name, help=text)
        command.add_argument("--config", type=Path, help="TOML file (see oracle.example.toml)")
    generate = sub.add_parser("generate", help="the model alone, no chain: check a GPU")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--tier", type=int, default=0)
    generate.add_argument("--out", type=Path, default=Path("image.png"))
    generate.add_argument("--model", help="diffusers repo id in the local cache, or a directory")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--config", type=Path)
    worker = sub.add_parser("worker", help='a GPU worker for a coordinator with workers = "celery" (no key, no RPC)')
    worker.add_argument("--config", type=Path, help="TOML file: broker_url, ipfs_api, tiers (others are ignored)")
    worker.add_argument("--device", help="e.g. cuda:1 (default: the config's device)")
    worker.add_argument("--name", help="worker name (default: genim-<device>@<host>)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from oracle.observe import setup_logging

    setup_logging()
    try:
        commands = {"run": _run, "status": _status, "withdraw": _withdraw, "generate": _generate, "worker": _worker}
        return commands[args.command](args)
    except (ConfigError, AlreadyRunning) as exc:
        print(f"genim-oracle: {exc}", file=sys.stderr)
        return 2
    except _Fatal as exc:
        print(f"genim-oracle: {exc}", file=sys.stderr)
        return 1


class _Fatal(RuntimeError):
    pass


def _components(config: OracleConfig, journal: Journal):  # noqa: ANN202 - returns the wired Daemon
    from genimnft.contract import Chain
    from genimnft.ipfs import IpfsClient
    from oracle.daemon import Daemon
    from oracle.generate import Generator
    from oracle.sender import AccountError, Sender, load_account

    try:
        account = load_account(config.account, config.passphrase_env)
    except AccountError as exc:
        raise _Fatal(str(exc)) from exc
    try:
        address = config.contract_address()
    except (OSError, KeyError, ValueError) as exc:
        raise _Fatal(f"cannot read deployment file {config.deployment_file}: {exc}") from exc
    try:
        chain = Chain(config.rpc_uri, address, timeout=config.rpc_timeout)
    except ValueError as exc:
        raise _Fatal(f"bad contract address {address!r}: {exc}") from exc
    sender = Sender(chain, journal, account)
    if config.workers == "celery":
        from oracle.dispatch import Coordinator

        # The workers load the models; the coordinator's generator only sizes images (it never loads torch).
        return Coordinator(config, chain, journal, IpfsClient(config.ipfs_api, config.ipfs_timeout),
                           Generator(config.tiers, "cpu"), sender)  # fmt: skip
    return Daemon(config, chain, journal, IpfsClient(config.ipfs_api, config.ipfs_timeout),
                  Generator(config.tiers, config.device), sender)  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from oracle.daemon import StartupError
    from oracle.generate import ModelLoadError
    from oracle.observe import serve

    config = load_config(args.config)
    journal = Journal(config.state_dir)
    journal.lock()
    daemon = _components(config, journal)
    try:
        daemon.preflight()
    except (StartupError, ModelLoadError) as exc:
        raise _Fatal(str(exc)) from exc
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = None
    if config.metrics_port:
        server = serve(config.metrics_host, config.metrics_port, daemon.status, stale_after=30 + config.poll_interval)
    try:
        daemon.run(stop)
    finally:
        if server is not None:
            server.shutdown()
        journal.close()
    return 0


def _status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    journal = Journal(config.state_dir)
    report: dict[str, object] = {"jobs": journal.counts(), "next_block": journal.next_block(config.first_block())}
    try:
        daemon = _components(config, journal)
        report["oracle"] = daemon.sender.address
        report["credit_wei"] = daemon.chain.credit(daemon.sender.address)
    except Exception as exc:
        report["chain_error"] = str(exc).splitlines()[0]
    print(json.dumps(report, indent=2))
    return 0


def _withdraw(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    journal = Journal(config.state_dir)
    daemon = _components(config, journal)
    chain, account = daemon.chain, daemon.sender.account
    owed = chain.credit(account.address)
    if owed == 0:
        print("nothing to withdraw")
        return 0
    function = chain.contract.functions.withdraw()
    tx = function.build_transaction(
        {"from": account.address, "nonce": chain.w3.eth.get_transaction_count(account.address, "pending")}
    )
    signed = account.sign_transaction(tx)
    tx_hash = chain.w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=config.tx_timeout)
    print(f"withdrew {owed} wei in {tx_hash.hex()} (status {receipt['status']})")
    return 0 if receipt["status"] == 1 else 1


def _generate(args: argparse.Namespace) -> int:
    from oracle.generate import Generator, ModelLoadError

    tiers = load_config(args.config).tiers if args.config else default_tiers()
    if args.model:
        tiers = {tier: settings.model_copy(update={"model": args.model}) for tier, settings in tiers.items()}
    generator = Generator(tiers)
    started = time.monotonic()
    try:
        generator.load(args.tier)
    except ModelLoadError as exc:
        raise _Fatal(str(exc)) from exc
    loaded = time.monotonic()
    print(f"loaded {tiers[args.tier].model} on {generator.device} in {loaded - started:.1f} s", file=sys.stderr)
    [image] = generator.generate(args.tier, [args.prompt], [args.seed])
    args.out.write_bytes(image.png)
    print(f"wrote {args.out} ({len(image.png)} bytes) in {time.monotonic() - loaded:.2f} s", file=sys.stderr)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from oracle.config import WorkerConfig
    from oracle.generate import Generator, ModelLoadError
    from oracle.worker import default_name, run_worker

    config = load_config(args.config, model=WorkerConfig)
    device = args.device or config.device
    generator = Generator(config.tiers, device)
    try:
        run_worker(config, generator, args.name or default_name(generator.device))
    except ModelLoadError as exc:
        raise _Fatal(str(exc)) from exc
    return 0


if __name__ == "__main__":
    sys.exit(main())
