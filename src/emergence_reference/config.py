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


class ConfigError(ValueError):
    """A setting the service cannot start with (reported in one line, exit status 2)."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    faults: FaultSet = field(default_factory=FaultSet)
    workers: int = 2
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
