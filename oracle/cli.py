"""`genim-oracle`: run the daemon, show its status, test the model alone, withdraw earnings."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

from genimnft.contract import Asset
from genimnft.settings import ConfigError
from oracle.config import Config, OracleConfig, ReaderConfig, default_tiers, load_config
from oracle.journal import AlreadyRunning, Journal, intact

log = logging.getLogger("genim.cli")
STATUS_RPC_TIMEOUT = 3.0  # `status` answers in seconds even when the RPC does not


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
    show = sub.add_parser("show", help="where a token's image is (tokenURI, IPFS, gateway), saved as a PNG")
    show.add_argument("token", type=int)
    show.add_argument("--config", type=Path, help="TOML file: rpc_uri, the contract, ipfs_api, gateway_url")
    show.add_argument("--out", type=Path, help="where to save the PNG (default token-<id>.png)")
    show.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait this long for the image first")
    verify = sub.add_parser(
        "verify", help="check tokens against the chain, IPFS and their model (anyone; exit 0 if all pass)"
    )
    verify.add_argument("token", type=int, nargs="?")
    verify.add_argument("--all", action="store_true", help="every token whose image is set")
    verify.add_argument("--config", type=Path, help="TOML file: rpc_uri, the contract, ipfs_api, tiers, device")
    verify.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="load the model the metadata names NAME from PATH (repeatable)")  # fmt: skip
    verify.add_argument("--no-regenerate", action="store_true", help="check chain and IPFS only, load no model")
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
        commands = {"run": _run, "status": _status, "withdraw": _withdraw, "generate": _generate, "worker": _worker,
                    "show": _show, "verify": _verify}  # fmt: skip
        code = commands[args.command](args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except BrokenPipeError:  # `genim-oracle status | head -2`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ConfigError, AlreadyRunning) as exc:
        print(f"genim-oracle: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # one not met at open (which names its file): it happened in the journal
        print(f"genim-oracle: journal: {_first_line(exc)}", file=sys.stderr)
        return 1
    except _Fatal as exc:
        print(f"genim-oracle: {exc}", file=sys.stderr)
        return 1


class _Fatal(RuntimeError):
    pass


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or exc.__class__.__name__).splitlines()[0]


def _config(args: argparse.Namespace, model: type[Config] = OracleConfig) -> Config:
    try:
        return load_config(args.config, model=model)
    except ConfigError as exc:
        if args.config is not None:
            raise
        raise ConfigError(f"no --config given: pass one, e.g. `genim-oracle {args.command} --config oracle.toml` "
                          f"(start from oracle.example.toml), or set GENIM_* variables ({exc})") from exc  # fmt: skip


def _storage_problem(state_dir: Path, exc: BaseException) -> str:
    """One line for the operator: what is wrong with the state directory or its journal, and what to do."""
    db = state_dir / "journal.sqlite3"
    text = _first_line(exc)
    if isinstance(exc, OSError) or "unable to open" in text or "readonly" in text:
        return f"state_dir {state_dir} is not writable ({text}): fix its permissions or set state_dir elsewhere"
    if "full" in text:
        return f"journal {db}: {text}: free space on that disk and restart (every finished stage is kept)"
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError) and not intact(db):
        return (f"journal {db} is corrupt ({text}); to rebuild it, move it and its -wal/-shm files aside and restart: "
                "the daemon rescans from the deployment block, which is safe (the chain is the truth)")  # fmt: skip
    return f"journal {db}: {text}"


def _open_journal(config: OracleConfig, lock: bool = False) -> Journal:
    try:
        journal = Journal(config.state_dir)
        if lock:
            journal.lock()
        return journal
    except (OSError, sqlite3.Error) as exc:
        raise _Fatal(_storage_problem(config.state_dir, exc)) from exc


def _chain_and_account(config: OracleConfig, rpc_timeout: float):  # noqa: ANN202 - (Chain, LocalAccount)
    from oracle.sender import AccountError, load_account

    try:
        account = load_account(config.account, config.passphrase_env)
    except AccountError as exc:
        raise _Fatal(str(exc)) from exc
    return _chain(config, rpc_timeout), account


def _chain(config: ReaderConfig, rpc_timeout: float):  # noqa: ANN202 - Chain (imported late: web3 is slow to load)
    from genimnft.contract import Chain

    try:
        address = config.contract_address()
    except (OSError, KeyError, ValueError) as exc:
        raise _Fatal(f"cannot read deployment file {config.deployment_file}: {exc}") from exc
    try:
        return Chain(config.rpc_uri, address, timeout=rpc_timeout)
    except ValueError as exc:
        raise _Fatal(f"bad contract address {address!r}: {exc}") from exc


def _components(config: OracleConfig, journal: Journal):  # noqa: ANN202 - returns the wired Daemon
    from genimnft.ipfs import IpfsClient
    from oracle.daemon import Daemon
    from oracle.generate import Generator
    from oracle.sender import Sender

    chain, account = _chain_and_account(config, config.rpc_timeout)
    sender = Sender(chain, journal, account)
    try:
        if config.workers == "celery":
            from oracle.dispatch import Coordinator

            # The workers load the models; the coordinator's generator only sizes images (it never loads torch).
            return Coordinator(config, chain, journal, IpfsClient(config.ipfs_api, config.ipfs_timeout),
                               Generator(config.tiers, "cpu"), sender)  # fmt: skip
        return Daemon(config, chain, journal, IpfsClient(config.ipfs_api, config.ipfs_timeout),
                      Generator(config.tiers, config.device), sender)  # fmt: skip
    except OSError as exc:
        raise _Fatal(_storage_problem(config.state_dir, exc)) from exc


def _run(args: argparse.Namespace) -> int:
    from oracle.daemon import StartupError
    from oracle.generate import ModelLoadError
    from oracle.observe import serve

    config = _config(args)
    journal = _open_journal(config, lock=True)
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
    except sqlite3.Error as exc:
        raise _Fatal(_storage_problem(config.state_dir, exc)) from exc
    finally:
        if server is not None:
            server.shutdown()
        journal.close()
    return 0


def _status(args: argparse.Namespace) -> int:
    """Reads; never creates the state directory, never loads a model, and gives the RPC a few seconds."""
    from oracle.progress import read_progress

    config = _config(args)
    report: dict[str, object] = {"state_dir": str(config.state_dir)}
    if (config.state_dir / "journal.sqlite3").is_file():
        journal = _open_journal(config)
        try:
            report["jobs"] = journal.counts()
            report["next_block"] = journal.next_block(config.first_block())
            report["notices"] = journal.notices()  # what the running daemon waits for (funds, mempool...)
            report["earnings"] = {asset.name: {"images": images, "escrow": escrow, "amount": asset.amount_text(escrow)}
                                  for asset, (images, escrow) in journal.earnings().items()}  # fmt: skip
        finally:
            journal.close()
        report.update(read_progress(config.state_dir, report["jobs"]))  # type: ignore[arg-type]
    else:
        report["jobs"] = {}
        report["journal"] = "none yet: the daemon creates it on its first run"
    try:
        chain, account = _chain_and_account(config, min(config.rpc_timeout, STATUS_RPC_TIMEOUT))
        report["oracle"] = account.address
        credits = chain.credits(account.address)
        report["credit_wei"], report["credit_usdc"] = credits[Asset.ETH], credits[Asset.USDC]  # base units
    except Exception as exc:
        report["chain_error"] = _first_line(exc)
    print(json.dumps(report, indent=2))
    return 0


def _withdraw(args: argparse.Namespace) -> int:
    """Takes the state directory's lock, as the daemon does: the oracle's nonces have one owner at a time."""
    config = _config(args)
    journal = _open_journal(config)
    try:
        journal.lock()
    except AlreadyRunning as exc:
        raise _Fatal(f"a daemon is running on {config.state_dir} and owns the oracle's nonces: stop it (SIGTERM), "
                     "withdraw, start it again (nothing is lost)") from exc  # fmt: skip
    chain, account = _chain_and_account(config, config.rpc_timeout)
    owed = chain.credits(account.address)
    if not any(owed.values()):
        print("nothing to withdraw")
        return 0
    function = chain.contract.functions.withdraw()
    tx = function.build_transaction(
        {"from": account.address, "nonce": chain.w3.eth.get_transaction_count(account.address, "pending")}
    )
    signed = account.sign_transaction(tx)
    tx_hash = chain.w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=config.tx_timeout)
    usdc = owed[Asset.USDC]
    print(f"withdrew {owed[Asset.ETH]} wei and {usdc} USDC units ({Asset.USDC.amount_text(usdc)}) in "
          f"{chain.w3.to_hex(tx_hash)} (status {receipt['status']})")  # fmt: skip
    return 0 if receipt["status"] == 1 else 1


def _show(args: argparse.Namespace) -> int:
    from web3.exceptions import Web3Exception

    from genimnft.ipfs import IpfsClient
    from oracle.lookup import TokenUnreadable
    from oracle.show import NotReady, show, wait_for_image

    config = _config(args, ReaderConfig)
    chain = _chain(config, config.rpc_timeout)
    try:
        if args.wait:
            wait_for_image(chain, args.token, args.wait)
        lines = show(chain, IpfsClient(config.ipfs_api, config.ipfs_timeout), config.gateway_url, args.token, args.out)
    except (NotReady, TokenUnreadable) as exc:
        raise _Fatal(str(exc)) from exc
    except (Web3Exception, OSError) as exc:
        raise _Fatal(f"cannot read token {args.token} from {config.rpc_uri}: {_first_line(exc)}") from exc
    print("\n".join(lines))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from web3.exceptions import Web3Exception

    from genimnft.ipfs import IpfsClient
    from oracle.audit import generator_regenerate, verify

    if (args.token is None) == (not args.all):
        raise ConfigError("name one token, or --all")
    models = dict(pair.split("=", 1) for pair in args.model if "=" in pair)
    config = _config(args, ReaderConfig)
    chain = _chain(config, config.rpc_timeout)
    regenerate = None if args.no_regenerate else generator_regenerate(config.device)
    try:
        lines, passed = verify(chain, IpfsClient(config.ipfs_api, config.ipfs_timeout),
                               None if args.all else [args.token], config.first_block() or 0, config.log_range,
                               config.tiers, regenerate, models)  # fmt: skip
    except (Web3Exception, OSError) as exc:
        raise _Fatal(f"cannot read the contract from {config.rpc_uri}: {_first_line(exc)}") from exc
    print("\n".join(lines))
    return 0 if passed else 1


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
