"""Configuration files, read one way for every program: a TOML file, then `<PREFIX><FIELD>` environment
variables, then explicit overrides, validated by a pydantic model into one-line errors."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

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
