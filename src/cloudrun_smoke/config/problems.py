"""A pydantic ``ValidationError`` of one environment, said as one line naming the file and the key.

An engineer reads the first problem and fixes it; the line names the table the way ``smoke.toml``
writes it (``[env.prod].log_deadline``, ``[env.prod.stack].tag``, ``env.prod.window.max``), or the
``SMOKE_*`` variable when an override gave the value.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from cloudrun_smoke.config.schema import REMOVED_KEYS, Environment
from cloudrun_smoke.config.validators import SubKeyError
from cloudrun_smoke.errors import ConfigError

Loc = tuple[str, ...]
STACK = "stack"
SUB_TABLES = (
    "expect",
    "slo",
    "checks",
    "window",
    "regression",
    "patterns",
    "known_failures",
)  # written env.NAME.KEY
NOT_FROM_THE_FILE = ("name", "source")


def config_error(
    error: ValidationError, path: Path, name: str, overridden: Mapping[Loc, str] | None = None
) -> ConfigError:
    """The first problem of ``error``, for ``[env.NAME]`` of ``path``; ``overridden`` maps the
    location of a value an environment variable gave to that variable's name."""
    problem = min(error.errors(), key=_rank)
    loc, message = _located(problem)
    overridden = overridden or {}
    for length in range(len(loc), 0, -1):
        if loc[:length] in overridden:
            return ConfigError(f"{overridden[loc[:length]]}: {message}")
    return ConfigError(f"{_where(path, name, loc)}: {message}")


def _rank(problem: ErrorDetails) -> int:
    """Keys that no longer exist first (they say what replaced them), then unknown keys, then values."""
    if problem["type"] == "extra_forbidden":
        return 0 if str(problem["loc"][-1]) in REMOVED_KEYS else 1
    return 2


def _located(problem: ErrorDetails) -> tuple[Loc, str]:
    """The key a problem is about (``()``: the environment's table) and what is wrong with it."""
    loc: Loc = tuple(str(part) for part in problem["loc"])
    kind = problem["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        if key in REMOVED_KEYS:
            return loc, REMOVED_KEYS[key]
        known = ", ".join(known_keys(loc[:-1]))
        return loc[:-1], f"unknown key {key!r} (known: {known})"
    if kind == "missing":
        return loc[:-1], f"missing required key {loc[-1]!r}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return loc, f"expected a table, got {problem['input']!r}"
    cause = (problem.get("ctx") or {}).get("error")
    if isinstance(cause, SubKeyError):
        return loc + cause.keys, str(cause)
    if isinstance(cause, Exception):
        return loc, str(cause)
    return loc, problem["msg"]


def _where(path: Path, name: str, loc: Loc) -> str:
    """``[env.NAME]`` and ``[env.NAME.stack]`` keys, as written; sub-tables' keys as dotted paths."""
    if not loc:
        return f"{path}: [env.{name}]"
    if loc[0] == STACK:
        return f"{path}: [env.{name}.stack]" + "".join(f".{key}" for key in loc[1:])
    if loc[0] in SUB_TABLES:
        return f"{path}: env.{name}." + ".".join(loc)
    return f"{path}: [env.{name}]." + ".".join(loc)


def known_keys(loc: Loc = ()) -> list[str]:
    """The keys the table at ``loc`` takes (the environment's own: all but its name and source)."""
    model: type[BaseModel] | None = Environment
    parts = iter(loc)
    for key in parts:
        assert model is not None
        annotation = model.model_fields[key].annotation
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            next(parts, None)  # the entry's name
        model = _model_of(annotation)
    assert model is not None
    return sorted(set(model.model_fields) - set(NOT_FROM_THE_FILE if model is Environment else ()))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (through ``X | None`` and ``Annotated``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            model = _model_of(arg)
            if model is not None:
                return model
    return None
