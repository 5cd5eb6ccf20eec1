"""Environments: ``smoke.toml`` < ``SMOKE_*`` variables < command-line options → one :class:`Environment`.

Validation (:mod:`cloudrun_smoke.config.schema`) happens before anything runs, and every problem is
one line naming the file and the key, so a typo in a pipeline's configuration fails in the first
second, not after a deploy timed out. A ``SMOKE_*`` variable's value is validated by the same schema
as the key it overrides, and a problem with it names the variable.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cloudrun_smoke.config.problems import NOT_FROM_THE_FILE, Loc, config_error, known_keys
from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.config.validators import positive_int, switch
from cloudrun_smoke.errors import ConfigError

ENV_VAR = "SMOKE_ENV"
CONFIG_VAR = "SMOKE_CONFIG"

# SMOKE_* variables: the key each overrides, and how its text becomes that key's TOML value. Keys of
# [env.NAME.stack] are overridden only in an environment that has that table.
OVERRIDES: Mapping[str, tuple[Loc, Callable[[str], Any]]] = {
    "SMOKE_LOG_DEADLINE": (("log_deadline",), float),
    "SMOKE_CLEANUP_GRACE": (("cleanup_grace",), float),
    "SMOKE_RUN_API_ENDPOINT": (("run_api_endpoint",), str),
    "SMOKE_LOGGING_API_ENDPOINT": (("logging_api_endpoint",), str),
    "SMOKE_MONITORING_API_ENDPOINT": (("monitoring_api_endpoint",), str),
    # The benchmark's scale knob: unlike the file's key (where 0 means 1), 0 is refused.
    "SMOKE_ARCHIVE_SAMPLES": (("slo", "archive_samples"), lambda v: positive_int(int(v))),
    "SMOKE_LOCAL_SERVICE_CMD": (("stack", "service_cmd"), str),
    "SMOKE_INGESTION_DELAY": (("stack", "ingestion_delay"), float),
    "SMOKE_INGESTION_JITTER": (("stack", "ingestion_jitter"), float),
    "SMOKE_LOCAL_FAULTS": (("stack", "faults"), str),  # comma-separated
    "SMOKE_LOCAL_REVISION_FAULTS": (("stack", "revision_faults"), str),  # comma-separated
    "SMOKE_LOCAL_BASELINE": (("stack", "baseline"), str),
    "SMOKE_LOCAL_INSTANCES": (("stack", "instances"), int),
    "SMOKE_LOCAL_SHARED_STATE": (("stack", "shared_state"), switch),
    "SMOKE_LOCAL_CPU_IDLE": (("stack", "cpu_idle"), switch),
    "SMOKE_LOCAL_NEIGHBOURS": (("stack", "neighbours"), float),
}


@dataclass(frozen=True)
class Options:
    """What the command line says; ``None`` (or ``False``): not given."""

    config: str | None = None  # --smoke-config
    env: str | None = None  # --env
    log_deadline: float | None = None  # --log-deadline
    local_service_cmd: str | None = None  # --local-service-cmd
    read_only: bool = False  # --read-only


@dataclass(frozen=True)
class SmokeConfig:
    """A parsed ``smoke.toml``: its environments' tables, each validated when it is asked for."""

    path: Path
    environments: Mapping[str, Mapping[str, Any]]

    def names(self) -> list[str]:
        return sorted(self.environments)

    def environment(self, name: str, environ: Mapping[str, str] | None = None) -> Environment:
        """The named environment with ``SMOKE_*`` overrides applied, validated."""
        if name not in self.environments:
            raise ConfigError(
                f"unknown environment {name!r} in {self.path}; known: {', '.join(self.names())}"
            )
        raw = copy.deepcopy(dict(self.environments[name]))
        misplaced = sorted(set(raw) & set(NOT_FROM_THE_FILE))
        if misplaced:
            known = ", ".join(known_keys())
            raise ConfigError(f"{self.path}: [env.{name}]: unknown key {misplaced[0]!r} (known: {known})")
        overridden = _apply_overrides(raw, os.environ if environ is None else environ)
        try:
            return Environment.model_validate({**raw, "name": name, "source": str(self.path)})
        except ValidationError as e:
            raise config_error(e, self.path, name, overridden) from None


def _apply_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[Loc, str]:
    """Set the keys the ``SMOKE_*`` variables give into ``raw``; returns which variable gave which key."""
    overridden: dict[Loc, str] = {}
    for variable, (loc, parse) in OVERRIDES.items():
        text = environ.get(variable)
        if not text:
            continue
        *tables, key = loc
        target: Any = raw
        for table in tables:
            if table == "stack" and "stack" not in raw:
                break
            target = target.setdefault(table, {})
        else:
            if isinstance(target, dict):
                try:
                    target[key] = parse(text)
                except ValueError as e:
                    raise ConfigError(f"{variable}: {e}") from None
                overridden[loc] = variable
    return overridden


def load_config(path: Path) -> SmokeConfig:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (pass --smoke-config PATH or set {CONFIG_VAR})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    envs = data.get("env")
    if not isinstance(envs, dict) or not envs:
        raise ConfigError(f"{path}: no [env.NAME] tables: define at least one environment")
    for name, table in envs.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: env.{name}: expected a table")
    extra = sorted(set(data) - {"env"})
    if extra:
        raise ConfigError(f"{path}: unknown top-level key {extra[0]!r} (environments go under [env.NAME])")
    return SmokeConfig(path, envs)


def resolve_environment(
    options: Options, rootdir: Path, environ: Mapping[str, str] | None = None
) -> Environment:
    """The environment a run uses: the file from ``--smoke-config``, ``SMOKE_CONFIG`` or the rootdir's
    ``smoke.toml``; the name from ``--env`` or ``SMOKE_ENV``; then variables, then options."""
    environ = os.environ if environ is None else environ
    raw_path = options.config or environ.get(CONFIG_VAR)
    path = Path(raw_path) if raw_path else rootdir / "smoke.toml"
    smoke_config = load_config(path)
    name = options.env or environ.get(ENV_VAR)
    if not name:
        raise ConfigError(
            f"--env is required (or {ENV_VAR}): one of {', '.join(smoke_config.names())} from {path}"
        )
    env = smoke_config.environment(name, environ)
    if options.log_deadline is not None:
        if options.log_deadline <= 0:
            raise ConfigError(
                f"--log-deadline must be a positive number of seconds, got {options.log_deadline:g}"
            )
        env = env.with_overrides(log_deadline=options.log_deadline)
    if options.local_service_cmd:
        if env.stack is None:
            raise ConfigError(f"--local-service-cmd only applies to a local environment; {name!r} is not one")
        env = env.with_overrides(
            stack=env.stack.model_copy(update={"service_cmd": options.local_service_cmd})
        )
    if options.read_only:
        env = env.with_overrides(read_only=True)
    return env
