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
# State shared by every instance (the runbook's env vars): the database and the Chroma server. Unset,
# both stay inside the container's data directory, one copy per instance.
DATABASE_URL_ENV = "DATABASE_URL"
CHROMA_HOST_ENV = "CHROMA_HOST"
CHROMA_PORT_ENV = "CHROMA_PORT"
DEFAULT_CHROMA_PORT = 8000
_SQLITE_URL = "sqlite:///"
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
    database_path: Path | None = None  # DATABASE_URL's file; None: ``<data dir>/emergence.db``
    chroma_host: str | None = None  # a Chroma server; None: the embedded store under ``<data dir>``
    chroma_port: int = DEFAULT_CHROMA_PORT
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


def database_path_from_env(environ: Mapping[str, str] = os.environ) -> Path | None:
    """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's form); None when unset."""
    url = (environ.get(DATABASE_URL_ENV) or "").strip()
    if not url:
        return None
    if not url.startswith(_SQLITE_URL) or len(url) == len(_SQLITE_URL):
        # Never echo the URL: a server URL carries its password.
        raise ConfigError(f"{DATABASE_URL_ENV}: the reference service supports sqlite:///PATH only")
    return Path(url[len(_SQLITE_URL) :])


def chroma_from_env(environ: Mapping[str, str] = os.environ) -> tuple[str | None, int]:
    """The Chroma server to use (CHROMA_HOST, CHROMA_PORT); no host: the embedded store."""
    host = (environ.get(CHROMA_HOST_ENV) or "").strip() or None
    raw = (environ.get(CHROMA_PORT_ENV) or "").strip() or str(DEFAULT_CHROMA_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{CHROMA_PORT_ENV} must be an integer, got {raw!r}") from None
    if not 0 < port <= 65535:
        raise ConfigError(f"{CHROMA_PORT_ENV} out of range: {port}")
    return host, port
