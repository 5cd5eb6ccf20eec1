"""Environments: ``smoke.toml`` + options + ``SMOKE_*`` variables → one validated :class:`Environment`.

Validation happens before anything runs, and every problem is one line naming the file and the key,
so a typo in a pipeline's configuration fails in the first second, not after a deploy timed out.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cloudrun_smoke.config.check_settings import (
    CHECKS_SCHEMA,
    EXPECT_SCHEMA,
    SLO_SCHEMA,
    WINDOW_SCHEMA,
    CheckSettings,
    DeploymentExpectations,
    KnownFailure,
    SloThresholds,
    WindowSettings,
    parse_known_failures,
    parse_patterns,
    parse_section,
)
from cloudrun_smoke.config.validators import (
    boolean as _boolean,
)
from cloudrun_smoke.config.validators import (
    non_negative_int as _non_negative_int,
)
from cloudrun_smoke.config.validators import (
    non_negative_number as _non_negative_number,
)
from cloudrun_smoke.config.validators import (
    nonempty_string as _nonempty_string,
)
from cloudrun_smoke.config.validators import (
    positive_int as _positive_int,
)
from cloudrun_smoke.config.validators import (
    positive_number as _positive_number,
)
from cloudrun_smoke.config.validators import (
    string as _string,
)
from cloudrun_smoke.config.validators import (
    string_table as _string_table,
)
from cloudrun_smoke.config.validators import (
    table as _table,
)
from cloudrun_smoke.errors import ConfigError
from cloudrun_smoke.logs.patterns import catalogue_with
from cloudrun_smoke.window.monitoring import CLOUD_RUN_METRIC_DELAY_S, MIN_ALIGNMENT_PERIOD_S

IDLE_TIMEOUT_FLOOR_S = 300.0  # longer than any wait of a run between two requests (log_deadline, grace)
LOCAL_SAMPLE_PERIOD_S = 1.0  # the local stack samples its instances every second
AUTH_MODES = ("none", "dev-bypass", "bearer", "login", "id-token")
ENV_VAR = "SMOKE_ENV"


@dataclass(frozen=True)
class StackSettings:
    """How ``--env local`` builds its embedded Cloud Run."""

    service_cmd: str = "python -m emergence_reference"
    image: str = "local/emergencev8-backend:dev"
    memory: str = "2Gi"
    cpu: str = "2"
    timeout_seconds: int = 300
    min_instances: int = 1
    max_instances: int = 10
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # values may be secrets
    ingestion_delay: float = 1.0
    ingestion_jitter: float = 0.5
    startup_timeout: float = 30.0
    read_quota_per_minute: int = 60
    instances: int = 1  # instances per revision, each its own process and data directory
    shared_state: bool = False  # one Chroma server + SQLite file for all: CHROMA_HOST/PORT, DATABASE_URL
    iam: bool = False  # a private service: requests need an invoker's ID token (Cloud Run IAM)
    cpu_idle: bool = False  # CPU only while a request is served (the runbook's deploy gives true)
    startup_cpu_boost: bool = False  # reported by the Admin API only
    candidate_cmd: str = ""  # a second revision beside the serving one: no traffic, reachable by `tag`
    tag: str = ""
    faults: tuple[str, ...] = ()  # "stack:NAME" switches of the stack; other names go to EMERGENCE_FAULTS
    traffic_users: int = 6  # `-m window` on the local stack: simulated users of the background traffic
    traffic_threads: int = 8  # threads each of them creates, writes to and archives
    traffic_deadline: float = 60.0  # seconds: no new thread after it, and no more waiting for consolidations
    # Cloud Monitoring as the stack serves it: the shortest alignment period it takes (Google's is 60 s;
    # a local window of a few seconds needs less, so it must be allowed here) ...
    min_alignment_period: float = MIN_ALIGNMENT_PERIOD_S
    metric_delay: float = 1.0  # ... and how long a metric point stays invisible after it is sampled
    neighbours: float = 0.0  # other users' archived threads per second during the whole run (0: none)
    # Seconds without a request before an instance beyond min_instances is shut down (0: never); at least
    # IDLE_TIMEOUT_FLOOR_S, so that the stack never scales an instance in between two checks of a run.
    idle_timeout: float = 0.0


@dataclass(frozen=True)
class Environment:
    name: str
    source: str
    project: str
    region: str
    service: str
    description: str = ""
    auth: str = "dev-bypass"
    bearer_token_env: str = ""
    smoke_user_prefix: str = "smoke-"
    log_deadline: float = 60.0
    log_lookback: float = 120.0
    read_budget_per_minute: int = 30
    health_path: str = "/api/health"
    health_expect: Mapping[str, Any] = field(default_factory=lambda: {"status": "ok"})
    readiness_path: str = "/healthz"
    http_timeout: float = 30.0
    run_api_endpoint: str = ""
    logging_api_endpoint: str = ""
    monitoring_api_endpoint: str = ""  # gRPC host:port of Cloud Monitoring (default: Google's)
    read_only: bool = False
    login_email_env: str = "SMOKE_LOGIN_EMAIL"
    login_password_env: str = "SMOKE_LOGIN_PASSWORD"
    id_token_audience: str = ""
    impersonate_service_account: str = ""
    invoker: str = ""  # "id-token": an ID token for Cloud Run IAM in X-Serverless-Authorization
    expect: DeploymentExpectations = field(default_factory=DeploymentExpectations)
    slo: SloThresholds = field(default_factory=SloThresholds)
    window: WindowSettings = field(default_factory=WindowSettings)
    checks: CheckSettings = field(default_factory=CheckSettings)
    patterns: Mapping[str, list[str]] = field(default_factory=dict)
    known_failures: Mapping[str, KnownFailure] = field(default_factory=dict)
    stack: StackSettings | None = None

    @property
    def user_is_chosen_by_suite(self) -> bool:
        """Whether each run may act as its own user (dev-bypass, or no auth); else one fixed identity."""
        return self.auth in ("dev-bypass", "none")

    @property
    def is_local(self) -> bool:
        return self.stack is not None

    @property
    def min_alignment_period(self) -> float:
        """The shortest alignment period the environment's Cloud Monitoring takes, in seconds."""
        return self.stack.min_alignment_period if self.stack else float(MIN_ALIGNMENT_PERIOD_S)

    @property
    def metric_delay(self) -> float:
        """How far before now the window's Monitoring figures end: ``[window] metric_delay``, by
        default one sampling period plus the time a sampled point may stay invisible."""
        if self.window.metric_delay is not None:
            return self.window.metric_delay
        if self.stack is not None:
            return LOCAL_SAMPLE_PERIOD_S + self.stack.metric_delay
        return float(CLOUD_RUN_METRIC_DELAY_S)

    def with_overrides(self, **changes: Any) -> Environment:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# -- the schema: key -> (parser, required) ------------------------------------------------------------
Parser = Callable[[Any], Any]


def _invoker(value: Any) -> str:
    if value not in ("", "id-token"):
        raise ValueError(f'expected "id-token" or "", got {value!r}')
    return str(value)


def _auth_mode(value: Any) -> str:
    if value not in AUTH_MODES:
        raise ValueError(f"expected one of {', '.join(AUTH_MODES)}, got {value!r}")
    return str(value)


def _path(value: Any) -> str:
    if not _string(value) == "" and not value.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {value!r}")
    return value


ENV_SCHEMA: dict[str, tuple[Parser, bool]] = {
    "description": (_string, False),
    "project": (_nonempty_string, True),
    "region": (_nonempty_string, True),
    "service": (_nonempty_string, True),
    "auth": (_auth_mode, False),
    "bearer_token_env": (_nonempty_string, False),
    "smoke_user_prefix": (_nonempty_string, False),
    "log_deadline": (_positive_number, False),
    "log_lookback": (_positive_number, False),
    "read_budget_per_minute": (_positive_int, False),
    "health_path": (_path, False),
    "health_expect": (_table, False),
    "readiness_path": (_path, False),
    "http_timeout": (_positive_number, False),
    "run_api_endpoint": (_string, False),
    "logging_api_endpoint": (_string, False),
    "monitoring_api_endpoint": (_string, False),
    "read_only": (_boolean, False),
    "login_email_env": (_nonempty_string, False),
    "login_password_env": (_nonempty_string, False),
    "id_token_audience": (_string, False),
    "impersonate_service_account": (_string, False),
    "invoker": (_invoker, False),
}

STACK_SCHEMA: dict[str, tuple[Parser, bool]] = {
    "service_cmd": (_nonempty_string, False),
    "image": (_nonempty_string, False),
    "memory": (_nonempty_string, False),
    "cpu": (_nonempty_string, False),
    "timeout_seconds": (_positive_int, False),
    "min_instances": (_non_negative_int, False),
    "max_instances": (_positive_int, False),
    "env": (_string_table, False),
    "ingestion_delay": (_non_negative_number, False),
    "ingestion_jitter": (_non_negative_number, False),
    "startup_timeout": (_positive_number, False),
    "read_quota_per_minute": (_positive_int, False),
    "instances": (_positive_int, False),
    "shared_state": (_boolean, False),
    "iam": (_boolean, False),
    "cpu_idle": (_boolean, False),
    "startup_cpu_boost": (_boolean, False),
    "candidate_cmd": (_string, False),
    "tag": (lambda v: _tag(v), False),
    "faults": (lambda v: _faults(v), False),
    "traffic_users": (_positive_int, False),
    "traffic_threads": (_positive_int, False),
    "traffic_deadline": (_positive_number, False),
    "min_alignment_period": (_positive_number, False),
    "metric_delay": (_non_negative_number, False),
    "neighbours": (_non_negative_number, False),
    "idle_timeout": (lambda v: _idle_timeout(v), False),
}


def _idle_timeout(value: Any) -> float:
    seconds = _non_negative_number(value)
    if 0 < seconds < IDLE_TIMEOUT_FLOOR_S:
        raise ValueError(
            f"expected 0 (off) or at least {IDLE_TIMEOUT_FLOOR_S:g} s, got {value!r}: shorter, the stack "
            "would shut an instance down in the middle of a run"
        )
    return seconds


def _tag(value: Any) -> str:
    import re

    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,44}[a-z0-9])?", _string(value)):
        raise ValueError(f"expected a Cloud Run tag (lower-case letters, digits, '-'), got {value!r}")
    return value


def _switch(value: str) -> bool:
    """An on/off environment variable: 1/0, true/false, yes/no, on/off."""
    lowered = value.strip().lower()
    if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ValueError(f"expected 1 or 0 (true/false), got {value!r}")
    return lowered in ("1", "true", "yes", "on")


def _faults(value: Any) -> tuple[str, ...]:
    """A list (or a comma-separated string) of fault names; unknown ``stack:`` names are refused."""
    from cloudrun_smoke.local.faults import split_faults

    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"expected a list of fault names, got {value!r}")
    split_faults(names)
    return tuple(n.strip() for n in names if n.strip())


# SMOKE_* variables that override a key of the selected environment.
ENV_OVERRIDES: dict[str, tuple[str, Parser]] = {
    "SMOKE_LOG_DEADLINE": ("log_deadline", lambda v: _positive_number(float(v))),
    "SMOKE_RUN_API_ENDPOINT": ("run_api_endpoint", _string),
    "SMOKE_LOGGING_API_ENDPOINT": ("logging_api_endpoint", _string),
    "SMOKE_MONITORING_API_ENDPOINT": ("monitoring_api_endpoint", _string),
}
STACK_OVERRIDES: dict[str, tuple[str, Parser]] = {
    "SMOKE_LOCAL_SERVICE_CMD": ("service_cmd", _nonempty_string),
    "SMOKE_INGESTION_DELAY": ("ingestion_delay", lambda v: _non_negative_number(float(v))),
    "SMOKE_INGESTION_JITTER": ("ingestion_jitter", lambda v: _non_negative_number(float(v))),
    "SMOKE_LOCAL_FAULTS": ("faults", lambda v: _faults(v)),
    "SMOKE_LOCAL_INSTANCES": ("instances", lambda v: _positive_int(int(v))),
    "SMOKE_LOCAL_SHARED_STATE": ("shared_state", lambda v: _switch(v)),
    "SMOKE_LOCAL_CPU_IDLE": ("cpu_idle", lambda v: _switch(v)),
    "SMOKE_LOCAL_NEIGHBOURS": ("neighbours", lambda v: _non_negative_number(float(v))),
}


def _parse_table(
    raw: Mapping[str, Any], schema: Mapping[str, tuple[Parser, bool]], where: str
) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(schema))})")
    values: dict[str, Any] = {}
    for key, (parser, required) in schema.items():
        if key not in raw:
            if required:
                raise ConfigError(f"{where}: missing required key {key!r}")
            continue
        try:
            values[key] = parser(raw[key])
        except ValueError as e:
            raise ConfigError(f"{where}.{key}: {e}") from None
    return values


@dataclass(frozen=True)
class SmokeConfig:
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
        environ = os.environ if environ is None else environ
        raw = dict(self.environments[name])
        raw_stack = raw.pop("stack", None)
        where = f"{self.path}: [env.{name}]"
        sections = {key: raw.pop(key) for key in SECTIONS if key in raw}
        values = _parse_table(raw, ENV_SCHEMA, where)
        values.update(_parse_sections(sections, f"{self.path}: env.{name}"))
        values.update(_overrides(environ, ENV_OVERRIDES))
        if environ.get("SMOKE_ARCHIVE_SAMPLES"):  # the benchmark's scale knob
            try:
                samples = _positive_int(int(environ["SMOKE_ARCHIVE_SAMPLES"]))
            except ValueError as e:
                raise ConfigError(f"SMOKE_ARCHIVE_SAMPLES: {e}") from None
            values["slo"] = replace(values.get("slo", SloThresholds()), archive_samples=samples)
        if raw_stack is not None:
            stack_where = f"{self.path}: [env.{name}.stack]"
            try:
                stack_raw = _table(raw_stack)
            except ValueError as e:
                raise ConfigError(f"{stack_where}: {e}") from None
            stack_values = _parse_table(stack_raw, STACK_SCHEMA, stack_where)
            stack_values.update(_overrides(environ, STACK_OVERRIDES))
            if stack_values.get("candidate_cmd") and not stack_values.get("tag"):
                raise ConfigError(f"{stack_where}: candidate_cmd needs a tag (its revision gets no traffic)")
            values["stack"] = StackSettings(**stack_values)
        env = Environment(name=name, source=str(self.path), **values)
        _check_alignment(env, f"{self.path}: env.{name}")
        return env


def _check_alignment(env: Environment, where: str) -> None:
    """Cloud Monitoring refuses an alignment period under 60 s (``Aggregation.alignment_period``: "The
    value must be at least 60 seconds"): a shorter ``gauge_period_s`` is a configuration error, found
    when smoke.toml is read rather than by the window checks' first ListTimeSeries call."""
    period, minimum = env.window.gauge_period_s, env.min_alignment_period
    if period < minimum:
        whose = (
            "this stack's min_alignment_period"
            if env.is_local
            else "Cloud Monitoring's shortest alignment period"
        )
        raise ConfigError(f"{where}.window.gauge_period_s: {period} s is shorter than {minimum:g} s, {whose}")


SECTIONS = ("expect", "slo", "checks", "window", "patterns", "known_failures")


def _parse_sections(sections: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        values: dict[str, Any] = {}
        if "expect" in sections:
            values["expect"] = DeploymentExpectations(
                **parse_section(sections["expect"], EXPECT_SCHEMA, f"{where}.expect")
            )
        if "slo" in sections:
            values["slo"] = SloThresholds(**parse_section(sections["slo"], SLO_SCHEMA, f"{where}.slo"))
        if "window" in sections:
            values["window"] = WindowSettings(
                **parse_section(sections["window"], WINDOW_SCHEMA, f"{where}.window")
            )
        if "checks" in sections:
            values["checks"] = CheckSettings(
                **parse_section(sections["checks"], CHECKS_SCHEMA, f"{where}.checks")
            )
        if "patterns" in sections:
            values["patterns"] = parse_patterns(sections["patterns"], f"{where}.patterns")
            try:
                catalogue_with(values["patterns"])
            except ValueError as e:
                raise ValueError(f"{where}.patterns.{e}") from None
        if "known_failures" in sections:
            values["known_failures"] = parse_known_failures(
                sections["known_failures"], f"{where}.known_failures"
            )
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return values


def _overrides(environ: Mapping[str, str], table: Mapping[str, tuple[str, Parser]]) -> dict[str, Any]:
    values = {}
    for variable, (key, parser) in table.items():
        if environ.get(variable):
            try:
                values[key] = parser(environ[variable])
            except ValueError as e:
                raise ConfigError(f"{variable}: {e}") from None
    return values


def load_config(path: Path) -> SmokeConfig:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (pass --smoke-config PATH or set SMOKE_CONFIG)") from None
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
