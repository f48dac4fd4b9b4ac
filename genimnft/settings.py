"""Configuration files, read one way for every program: a TOML file, then `<PREFIX><FIELD>` environment
variables, then explicit overrides, validated by a pydantic model into one-line errors.

A key the model does not know is an error that names the nearest one it does (a typo must not fall back to a
default silently). Relative paths in the file are relative to the file's directory, wherever the program runs;
in the environment or on the command line they are relative to the working directory, as a shell user expects.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
import types
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Self, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError, model_validator

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message is one line for the operator."""


def load_settings(
    model: type[Model], path: Path | None, env_prefix: str, overrides: Mapping[str, object] | None = None,
    env_skip: Collection[str] = (), also_known: Collection[type[BaseModel]] = (),
) -> Model:  # fmt: skip
    """`model` from the TOML file at `path` (if any), then the environment, then `overrides` (None values are
    not overrides). Fields in `env_skip` (tables) are not read from the environment. Top-level keys of the
    `also_known` models are accepted in the file and ignored (a worker reads its coordinator's file)."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        ignored = {name for other in also_known for name in other.model_fields} - set(model.model_fields)
        data = {key: value for key, value in data.items() if key not in ignored}
        if problem := unknown_key(model, data):
            raise ConfigError(f"config file {path}: {problem}")
        data = _relative_to(path.resolve().parent, model, data)
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


def unknown_key(model: type[BaseModel], data: Mapping[str, object], where: str = "") -> str | None:
    """The first key in `data`, tables included, that `model` has no field for, with the nearest field it has."""
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            [nearest] = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0) or ["?"]
            return f"unknown key `{where}{key}` (did you mean `{where}{nearest}`?)"
        inner = _model_in(field.annotation)
        if inner is None or not isinstance(value, Mapping):
            continue
        if get_origin(field.annotation) is dict:  # a table of tables, such as [tiers.0]
            tables = [(f"{where}{key}.{name}.", table) for name, table in value.items() if isinstance(table, Mapping)]
        else:
            tables = [(f"{where}{key}.", value)]
        for prefix, table in tables:
            if problem := unknown_key(inner, table, prefix):
                return problem
    return None


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The settings model a field holds: itself, optional, or as the values of a dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (dict, Union, types.UnionType):
        for arg in get_args(annotation):
            if (inner := _model_in(arg)) is not None:
                return inner
    return None


def _relative_to(base: Path, model: type[BaseModel], data: dict[str, object]) -> dict[str, object]:
    """`data` with each relative path of a `Path` field made relative to `base`."""
    resolved = dict(data)
    for key, value in data.items():
        field = model.model_fields[key]
        if isinstance(value, str) and _holds_path(field.annotation) and not Path(value).expanduser().is_absolute():
            resolved[key] = str(base / value)
    return resolved


def _holds_path(annotation: object) -> bool:
    return annotation is Path or any(arg is Path for arg in get_args(annotation))


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
