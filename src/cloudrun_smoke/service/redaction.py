"""Secrets out of library logs: what httpcore and friends print at DEBUG level.

An engineer chasing a failure turns on ``--log-level=DEBUG``; httpcore then logs every response's
headers, ``Set-Cookie`` session tokens included, and an ``Authorization`` value can reach a log line
through any library. Each record those libraries create is rewritten before any handler sees it:
known secret values, JWTs and bearer credentials become ``[redacted]``.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[redacted]"

# Libraries that print request or response details (headers, bodies, URLs) at DEBUG level.
LIBRARY_PREFIXES = ("httpcore", "httpx", "urllib3", "google", "grpc")

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_CREDENTIAL = re.compile(r"(?i)((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}")
_MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words

_known: set[str] = set()
_lock = threading.Lock()


def register(secret: str) -> None:
    """A value read from a secret source (password, token): redacted wherever a library logs it."""
    if len(secret) >= _MIN_SECRET_LENGTH:
        with _lock:
            _known.add(secret)


def redact(text: str) -> str:
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, REDACTED)
    text = _JWT.sub(REDACTED, text)
    return _CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text)


def _redacted_record(record: logging.LogRecord) -> logging.LogRecord:
    if not record.name.startswith(LIBRARY_PREFIXES):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a library's malformed log call: leave it to the handler's own error path
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    return record


def install() -> None:
    """Redact every record the libraries create, before any handler (pytest's capture, live logging,
    a file) sees it. A record factory rather than logger filters: a filter on ``google`` would not
    apply to records of ``google.auth.transport.requests``. Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_cloudrun_smoke_redacts", False):
        return

    def redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
        return _redacted_record(factory(*args, **kwargs))

    redacting_factory._cloudrun_smoke_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
