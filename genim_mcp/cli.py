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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genim-mcp", description=__doc__)
    parser.add_argument("mode", choices=["hosted", "local"])
    parser.add_argument("--config", type=Path, help="TOML file (see genim-mcp.example.toml); GENIM_MCP_* override")
    parser.add_argument("--port", type=int, help="hosted mode: port for /mcp and the pay page")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    # stdout is the MCP channel in local mode: logs go to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        from genim_mcp.server import build

        config = load_config(args.config, {"mode": args.mode, "port": args.port})
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
