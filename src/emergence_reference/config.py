"""Settings read once at start-up from the command line and the Cloud Run container environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emergence_reference.faults import FaultSet

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DATA_DIR_ENV = "EMERGENCE_DATA_DIR"
# The public service honours the dev bypass whatever ENVIRONMENT says; AUTH_DEV_BYPASS=0 is how an
# environment forbids it here (the security check's "production rejects the bypass").
DEV_BYPASS_ENV = "AUTH_DEV_BYPASS"
# "email:password" pairs, comma-separated: the accounts POST /api/auth/login accepts.
ALLOWLIST_ENV = "AUTH_ALLOWLIST"
JWT_SECRET_ENV = "AUTH_JWT_SECRET"
# Instances of one revision share this unless the environment sets its own (as Cloud Run's env does).
DEFAULT_JWT_SECRET = "emergence-reference-dev-secret"
_FALSY = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting the service cannot start with (reported in one line, exit status 2)."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    faults: FaultSet = field(default_factory=FaultSet)
    workers: int = 2
    dev_bypass_allowed: bool = True
    allowlist: Mapping[str, str] = field(default_factory=dict)
    jwt_secret: str = DEFAULT_JWT_SECRET
    # What Cloud Run tells the container about itself; logged at start-up, never required.
    service: str | None = None
    revision: str | None = None
    configuration: str | None = None


def port_from_env(environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get("PORT", "") or str(DEFAULT_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"PORT must be an integer, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"PORT out of range: {port}")
    return port


def dev_bypass_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(DEV_BYPASS_ENV, "1").strip().lower() not in _FALSY


def allowlist_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    accounts: dict[str, str] = {}
    for item in (environ.get(ALLOWLIST_ENV) or "").split(","):
        if not item.strip():
            continue
        email, sep, password = item.strip().partition(":")
        if not sep or not email or not password:
            # Never echo the item: it holds a password.
            raise ConfigError(f"{ALLOWLIST_ENV}: every entry must be email:password")
        accounts[email.lower()] = password
    return accounts
