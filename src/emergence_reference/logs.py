"""Logging set up as the public service does it, so the suite reads the same lines as in production.

Application logs: ``logging.basicConfig`` format, plain text on stderr (Cloud Run turns them into
``textPayload`` entries of ``run.googleapis.com/stderr``). Uvicorn keeps its own default configuration:
server messages on stderr, access lines on stdout. Both streams are line-buffered because the local
stack reads the pipes line by line.
"""

from __future__ import annotations

import copy
import logging
import sys
from typing import Any

import uvicorn.config

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


def uvicorn_log_config() -> dict[str, Any]:
    """Uvicorn's default configuration without colours (the output is a pipe, never a terminal)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for formatter in config["formatters"].values():
        formatter["use_colors"] = False
    return config
