"""RFC 3339 timestamps as Cloud Logging and the Cloud Run Admin API write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"\.(\d+)")


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_rfc3339(moment: datetime) -> str:
    """``2026-11-24T09:03:45.528342Z``: UTC, microseconds, ``Z`` (what Google's APIs return)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse ``Z``, ``+00:00`` and the client's ``+0000`` forms, with up to nanosecond fractions."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    value = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)
    value = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
