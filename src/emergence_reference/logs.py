"""Logging set up as the public service does it, so the suite reads the same lines as in production.

Application logs: ``logging.basicConfig`` format, plain text on stderr (Cloud Run turns them into
``textPayload`` entries of ``run.googleapis.com/stderr``). Uvicorn keeps its own default configuration:
server messages on stderr, access lines on stdout. Both streams are line-buffered because the local
stack reads the pipes line by line.

The ``json-logs`` variant writes every line, uvicorn's included, as one JSON object on stdout (Cloud
Run's structured logging: ``severity`` and ``message`` become the entry's severity and
``jsonPayload.message``).
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import uvicorn.config

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``severity``, ``message``, ``logger``, ``time``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        entry = {
            "severity": record.levelname,
            "message": message,
            "logger": record.name,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
        }
        return json.dumps(entry, ensure_ascii=False)


def _line_buffered() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def configure_logging(json_lines: bool = False, level: int = logging.INFO) -> None:
    _line_buffered()
    if not json_lines:
        logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def uvicorn_log_config(json_lines: bool = False) -> dict[str, Any]:
    """Uvicorn's default configuration without colours (the output is a pipe, never a terminal)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    if json_lines:
        config["formatters"] = {"json": {"()": f"{__name__}.JsonFormatter"}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
            handler["stream"] = "ext://sys.stdout"
        return config
    for formatter in config["formatters"].values():
        formatter["use_colors"] = False
    return config
