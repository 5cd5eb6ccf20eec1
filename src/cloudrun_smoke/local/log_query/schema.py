"""The LogEntry schema: which fields exist, their types, and how payload members are typed.

Absent fields that ``LogEntry`` itself defines are *defaulted* (compared as their zero value);
payload and label fields are typed per value, as Cloud Logging infers them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cloudrun_smoke.local.log_query.values import Kind, from_entry


@dataclass(frozen=True)
class FieldSpec:
    key: str  # the JSON (camelCase) name
    kind: Kind
    fields: Mapping[str, FieldSpec] | None = None  # a MESSAGE's fields by proto_name


def proto_name(name: str) -> str:
    """Protocol buffer field names match in any letter case, camelCase or snake_case alike."""
    return name.replace("_", "").lower()


def _message(*specs: FieldSpec) -> dict[str, FieldSpec]:
    return {proto_name(spec.key): spec for spec in specs}


def _strings(*keys: str) -> list[FieldSpec]:
    return [FieldSpec(key, Kind.STRING) for key in keys]


_HTTP_REQUEST = _message(
    *_strings("requestMethod", "requestUrl", "userAgent", "remoteIp", "serverIp", "referer", "protocol"),
    FieldSpec("status", Kind.INT),
    FieldSpec("requestSize", Kind.INT),
    FieldSpec("responseSize", Kind.INT),
    FieldSpec("cacheFillBytes", Kind.INT),
    FieldSpec("latency", Kind.DURATION),
    FieldSpec("cacheLookup", Kind.BOOL),
    FieldSpec("cacheHit", Kind.BOOL),
    FieldSpec("cacheValidatedWithOriginServer", Kind.BOOL),
)
LOG_ENTRY = _message(
    *_strings("logName", "insertId", "trace", "spanId", "textPayload"),
    FieldSpec(
        "resource", Kind.MESSAGE, _message(FieldSpec("type", Kind.STRING), FieldSpec("labels", Kind.MAP))
    ),
    FieldSpec("timestamp", Kind.TIMESTAMP),
    FieldSpec("receiveTimestamp", Kind.TIMESTAMP),
    FieldSpec("severity", Kind.SEVERITY),
    FieldSpec("httpRequest", Kind.MESSAGE, _HTTP_REQUEST),
    FieldSpec("labels", Kind.MAP),
    FieldSpec("traceSampled", Kind.BOOL),
    FieldSpec(
        "operation",
        Kind.MESSAGE,
        _message(*_strings("id", "producer"), FieldSpec("first", Kind.BOOL), FieldSpec("last", Kind.BOOL)),
    ),
    FieldSpec(
        "sourceLocation",
        Kind.MESSAGE,
        _message(*_strings("file", "function"), FieldSpec("line", Kind.INT)),
    ),
    FieldSpec(
        "split",
        Kind.MESSAGE,
        _message(
            FieldSpec("uid", Kind.STRING), FieldSpec("index", Kind.INT), FieldSpec("totalSplits", Kind.INT)
        ),
    ),
    FieldSpec("jsonPayload", Kind.STRUCT),
    FieldSpec("protoPayload", Kind.STRUCT),
    FieldSpec("metadata", Kind.STRUCT),  # deprecated; its members are searched like a payload's
)

# A field value with its type, and the schema of its members when it is a MESSAGE.
Typed = tuple[Any, Kind, Mapping[str, FieldSpec] | None]


def inferred(raw: Any) -> Iterator[Typed]:
    """A payload value typed as Cloud Logging infers it; an array stands for each of its members."""
    if isinstance(raw, list):
        for item in raw:
            yield from inferred(item)
    elif raw is None:
        yield None, Kind.NULL, None
    elif isinstance(raw, bool):
        yield raw, Kind.BOOL, None
    elif isinstance(raw, int | float):
        yield raw, Kind.DOUBLE, None
    elif isinstance(raw, str):
        yield raw, Kind.STRING, None
    elif isinstance(raw, Mapping):
        yield raw, Kind.STRUCT, None


def members(value: Mapping[str, Any], fields: Mapping[str, FieldSpec] | None) -> Iterator[Typed]:
    """The typed members of a message (per its schema) or of a map or JSON object (per value)."""
    for key, raw in value.items():
        spec = fields.get(proto_name(key)) if fields is not None else None
        if spec is None:
            yield from inferred(raw)
            continue
        typed = from_entry(raw, spec.kind)
        if typed is not None:
            yield typed, spec.kind, spec.fields
