"""`genim-mcp hosted --config front.toml` (streamable HTTP + pay page) or `genim-mcp local --config front.toml`
(stdio, pays from your own `ape accounts` alias under the configured caps)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import httpx
from web3.exceptions import Web3Exception

from genim_mcp.config import load_config
from genimnft.accounts import AccountError
from genimnft.settings import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genim-mcp", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True, metavar="{hosted,local}")
    hosted = modes.add_parser("hosted", help="serve MCP over streamable HTTP and the pay page (the seller)",
                              description="MCP at <public_url>/mcp and payment links at <public_url>/pay/<id>, "
                              "one port; buyers pay from their own wallets")  # fmt: skip
    local = modes.add_parser("local", help="speak MCP over stdio and pay from your own account (the buyer)",
                             description="An MCP client starts this itself (see the README's client JSON); "
                             "it pays from an `ape accounts` alias under the per-call and per-day caps")  # fmt: skip
    for mode in (hosted, local):
        mode.add_argument("--config", type=Path, help="TOML file (see genim-mcp.example.toml); GENIM_MCP_* override")
        mode.add_argument("--verbose", action="store_true", help="log what the server does (to stderr)")
    hosted.add_argument("--host", help="address to listen on (default: the config's host, 127.0.0.1)")
    hosted.add_argument("--port", type=int, help="port for /mcp and the pay page (default: the config's, 8765)")
    hosted.add_argument("--public-url", help="how buyers reach this server, for the payment links")
    local.add_argument("--account", help="the `ape accounts` alias that pays (TEST::n on local chains)")
    local.add_argument("--max-wei-per-call", type=int, help="cap on what one paid call sends")
    local.add_argument("--max-wei-per-day", type=int, help="cap on what the calls of one UTC day send")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {key: value for key, value in vars(args).items() if key not in ("config", "verbose")}
    # stdout is the MCP channel in local mode: logs go to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        from genim_mcp.server import build

        config = load_config(args.config, overrides)
        build(config).run()
    except (ConfigError, AccountError) as exc:
        print(f"genim-mcp: {exc}", file=sys.stderr)
        return 1
    except (Web3Exception, httpx.HTTPError, OSError) as exc:
        print(f"genim-mcp: cannot reach the chain: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
