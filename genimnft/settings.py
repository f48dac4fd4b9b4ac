"""Configuration files, read one way for every program: a TOML file, then `<PREFIX><FIELD>` environment
variables, then explicit overrides, validated by a pydantic model into one-line errors."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Self, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message is one line for the operator."""


def load_settings(
    model: type[Model], path: Path | None, env_prefix: str, overrides: Mapping[str, object] | None = None,
    env_skip: Collection[str] = (),
) -> Model:  # fmt: skip
    """`model` from the TOML file at `path` (if any), then the environment, then `overrides` (None values are
    not overrides). Fields in `env_skip` (tables) are not read from the environment."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
    for name in model.model_fields:
        value = os.environ.get(f"{env_prefix}{name.upper()}")
        if value is not None and name not in env_skip:
            data[name] = value
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(problems) from exc


# Blocks to trail the head by, per network, unless `confirmations` is set.
DEFAULT_CONFIRMATIONS = {"local": 0, "sepolia": 3, "mainnet": 10}


class ChainSettings(BaseModel):
    """Where the contract is and how far behind the head to read it: shared by the daemon and the MCP front."""

    network: str = "optimism:mainnet:node"
    rpc_uri: str
    contract: str | None = None
    deployment_file: Path | None = None
    start_block: int | None = None
    confirmations: int | None = None
    log_range: int = Field(2000, ge=1)
    reorg_window: int = Field(32, ge=0)
    rpc_timeout: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _contract_known(self) -> Self:
        if self.contract is None and self.deployment_file is None:
            raise ValueError("set `contract` (an address) or `deployment_file`")
        return self

    @property
    def network_name(self) -> str:
        parts = self.network.split(":")
        return parts[1] if len(parts) > 1 else "local"

    def required_confirmations(self) -> int:
        if self.confirmations is not None:
            return self.confirmations
        return DEFAULT_CONFIRMATIONS.get(self.network_name, 10)

    def contract_address(self) -> str:
        if self.contract:
            return self.contract
        return self._deployment()["address"]

    def deployment_chain_id(self) -> int | None:
        """The chain id the deployment file names, if there is a file and it names one."""
        if self.deployment_file is None or not self.deployment_file.is_file():
            return None
        chain_id = self._deployment().get("chain_id")
        return None if chain_id is None else int(chain_id)

    def first_block(self) -> int | None:
        """`start_block`, else the deployment file's block, else None (the caller decides where to start)."""
        if self.start_block is not None:
            return self.start_block
        if self.deployment_file is not None and self.deployment_file.is_file():
            return int(self._deployment().get("block", 0))
        return None

    def _deployment(self) -> dict:
        assert self.deployment_file is not None
        try:
            return json.loads(self.deployment_file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"deployment_file {self.deployment_file} does not exist") from None
