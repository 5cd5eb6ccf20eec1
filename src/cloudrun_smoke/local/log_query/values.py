"""Field types and value conversion: how a right-hand value and an entry's JSON value become comparable.

The right-hand value is converted to the field's type, so ``severity`` compares by level,
``httpRequest.latency`` as a Duration (``5s``, ``250ms``), ``timestamp`` as an instant and numbers
numerically; strings compare after NFKC case folding.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any


class Kind(Enum):
    """The type of a field, which decides how the right-hand value is converted and compared."""

    STRING = "string"
    INT = "integer"
    DOUBLE = "number"
    BOOL = "bool"
    DURATION = "Duration"
    TIMESTAMP = "Timestamp"
    SEVERITY = "LogSeverity"
    MESSAGE = "message"
    MAP = "map of strings"
    STRUCT = "JSON object"
    NULL = "JSON null"
    DYNAMIC = "JSON payload field"  # typed per value at evaluation, as Cloud Logging infers them


# A marker for "no such value": a failed conversion or a key absent from a payload.
ABSENT = object()

CONTAINERS = frozenset({Kind.MESSAGE, Kind.MAP, Kind.STRUCT})


class Unconvertible(Exception):
    """Text that can't be read as a type; the message says what was expected instead."""


def fold(text: str) -> str:
    """NFKC case folding: Cloud Logging normalises both sides like this before comparing strings."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


_INT_RE = re.compile(r"[+-]?\d+")
_DOUBLE_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DOUBLE_WORDS = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}
_DURATION_RE = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h)")
_NANOS_PER_UNIT = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?"
)
_SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}


def _to_int(text: str) -> int:
    if not _INT_RE.fullmatch(text.strip()):
        raise Unconvertible("an integer")
    return int(text)


def _to_double(text: str) -> float:
    word = text.strip()
    if word.lower() in _DOUBLE_WORDS:
        return _DOUBLE_WORDS[word.lower()]
    if not _DOUBLE_RE.fullmatch(word):
        raise Unconvertible("a number")
    return float(word)


def _to_bool(text: str) -> bool:
    word = text.strip().lower()
    if word not in ("true", "false"):
        raise Unconvertible('"true" or "false"')
    return word == "true"


def _to_duration(text: str) -> Decimal:
    """Nanoseconds, exactly: a signed decimal number and one unit of ns, us, ms, s, m or h."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None:
        raise Unconvertible('a duration such as "5s" or "250ms" (units ns, us, ms, s, m, h)')
    sign, number, unit = match.groups()
    nanos = Decimal(number) * _NANOS_PER_UNIT[unit]
    return -nanos if sign == "-" else nanos


def _to_timestamp(text: str) -> int:
    """Nanoseconds since the epoch, from RFC 3339 (``Z``, ``±hh:mm`` or the Python client's ``±hhmm``)
    or an ISO 8601 date, which the docs define as midnight UTC."""
    match = _TIMESTAMP_RE.fullmatch(text.strip())
    if match is None:
        raise Unconvertible('an RFC 3339 timestamp such as "2026-11-24T09:03:45.5Z" or a date "2026-11-24"')
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    try:
        # Validates the calendar; a time without an offset is read as UTC (the docs don't say).
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError as exc:
        raise Unconvertible(f"a valid date and time ({exc})") from None
    offset = 0
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise Unconvertible("a timestamp with a valid UTC offset")
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (-1 if sign == "-" else 1)
    seconds = calendar.timegm(moment.timetuple()) - offset
    return seconds * 10**9 + int((fraction or "").ljust(9, "0"))


def _to_severity(text: str) -> int:
    word = text.strip().upper()
    if word in _SEVERITIES:
        return _SEVERITIES[word]
    if _INT_RE.fullmatch(word) and int(word) in _SEVERITIES.values():
        return int(word)
    raise Unconvertible(
        "a LogSeverity: DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY "
        "or its number 0, 100, ... 800"
    )


CONVERTERS: dict[Kind, Callable[[str], Any]] = {
    Kind.STRING: fold,
    Kind.INT: _to_int,
    Kind.DOUBLE: _to_double,
    Kind.BOOL: _to_bool,
    Kind.DURATION: _to_duration,
    Kind.TIMESTAMP: _to_timestamp,
    Kind.SEVERITY: _to_severity,
}
_DEFAULTS: dict[Kind, Any] = {
    Kind.STRING: "",
    Kind.INT: 0,
    Kind.DOUBLE: 0.0,
    Kind.BOOL: False,
    Kind.DURATION: Decimal(0),
    Kind.TIMESTAMP: 0,
    Kind.SEVERITY: 0,
}


def zero_value(kind: Kind) -> Any:
    return {} if kind in CONTAINERS else _DEFAULTS[kind]


def from_entry(raw: Any, kind: Kind) -> Any:
    """The entry's JSON value as ``kind``; None when absent or malformed (then it counts as absent)."""
    if raw is None:
        return None
    if kind in CONTAINERS:
        return raw if isinstance(raw, Mapping) else None
    if kind is Kind.STRING:
        return raw if isinstance(raw, str) else None
    if isinstance(raw, bool):
        return raw if kind is Kind.BOOL else None
    if isinstance(raw, int | float):
        return raw if kind in (Kind.INT, Kind.DOUBLE, Kind.SEVERITY) else None
    if isinstance(raw, str):  # int64 fields, durations and timestamps travel as strings in JSON
        try:
            return CONVERTERS[kind](raw)
        except Unconvertible:
            return None
    return None
