"""Loading a signing key the Ape way: an `ape accounts` alias (encrypted keystore in Ape's data folder, passphrase
from the environment), or `TEST::n` for Ape's n-th local test account (local chains only)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

TEST_MNEMONIC = "test test test test test test test test test test test junk"
Account.enable_unaudited_hdwallet_features()


class AccountError(RuntimeError):
    """The account cannot be loaded."""


def load_account(alias: str, passphrase_env: str) -> LocalAccount:
    """The signing key of `alias`: shared by the oracle's sender and the MCP front's local wallet."""
    if alias.startswith("TEST::"):
        index = int(alias.removeprefix("TEST::"))
        return Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    folder = Path(os.environ.get("APE_DATA_FOLDER", Path.home() / ".ape"))
    keyfile = folder / "accounts" / f"{alias}.json"
    if not keyfile.is_file():
        raise AccountError(f"no ape account '{alias}' (looked for {keyfile}); create it with `ape accounts import`")
    passphrase = os.environ.get(passphrase_env)
    if passphrase is None:
        raise AccountError(f"set {passphrase_env} to the passphrase of ape account '{alias}'")
    try:
        key = Account.decrypt(json.loads(keyfile.read_text()), passphrase)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):  # what eth-account says for a wrong passphrase
            raise AccountError(f"wrong passphrase for ape account '{alias}' (read from ${passphrase_env})") from exc
        raise AccountError(f"cannot unlock ape account '{alias}': {exc}") from exc
    return Account.from_key(key)
