"""The Cloud Logging query language, as the Logging API emulator evaluates ``entries.list`` filters.

A hand-written recursive-descent parser (tokenizer → AST of dataclasses → evaluator) following
Google's "Logging query language" reference:

* ``NOT`` binds tightest, then ``OR``, then ``AND``: ``a OR b AND c`` is ``(a OR b) AND c``.
  Juxtaposition is ``AND``, ``-`` is ``NOT``; only upper-case ``AND``/``OR``/``NOT`` are
  operators (lower-case ``and`` is a search term). ``--`` starts a comment.
* String comparisons ignore case (NFKC case folding); ``:`` ("has") is a substring test;
  regular expressions (RE2 syntax, run on Python ``re``) are case-sensitive and unanchored.
* The right-hand value is converted to the field's type, so ``severity`` compares by level,
  ``httpRequest.latency`` as a Duration (``5s``, ``250ms``), ``timestamp`` as an instant and
  numbers numerically.
* Payload and label fields that are absent are *missing*: every comparison on them fails, so
  ``NOT`` of one succeeds. Absent fields that ``LogEntry`` itself defines are *defaulted*:
  compared as their zero value (an entry without ``severity`` is ``DEFAULT``).

Whatever the emulator does not implement raises :class:`FilterError` rather than matching
everything, so a smoke check can never pass vacuously on a filter Google would read differently.
"""

from __future__ import annotations

import calendar
import ipaddress
import math
import operator
import re
import unicodedata
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import unquote

__all__ = ["MAX_FILTER_LENGTH", "MAX_NESTING", "FilterError", "LogFilter", "compile_filter"]

MAX_FILTER_LENGTH = 20_000  # the documented limit; comments count towards it
MAX_NESTING = 100  # parentheses; the docs set no limit, Python's stack does


class FilterError(ValueError):
    """A filter the emulator cannot evaluate; message names the problem (and the column where useful)."""


class LogFilter:
    """A compiled filter; one instance may serve many threads (it only caches value conversions)."""

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self._root = root

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether ``entry`` (a LogEntry in the REST v2 JSON shape) satisfies the filter."""
        return self._root.matches(entry)

    def __repr__(self) -> str:
        return f"LogFilter({self.text!r})"


def compile_filter(text: str) -> LogFilter:
    """Parse once; an empty or whitespace-only filter matches everything."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"the filter is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}")
    return LogFilter(text, _Parser(text).parse())


# -- types and values ---------------------------------------------------------------------------------


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


_CONTAINERS = frozenset({Kind.MESSAGE, Kind.MAP, Kind.STRUCT})


class _Unconvertible(Exception):
    """Text that can't be read as a type; the message says what was expected instead."""


def _fold(text: str) -> str:
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
        raise _Unconvertible("an integer")
    return int(text)


def _to_double(text: str) -> float:
    word = text.strip()
    if word.lower() in _DOUBLE_WORDS:
        return _DOUBLE_WORDS[word.lower()]
    if not _DOUBLE_RE.fullmatch(word):
        raise _Unconvertible("a number")
    return float(word)


def _to_bool(text: str) -> bool:
    word = text.strip().lower()
    if word not in ("true", "false"):
        raise _Unconvertible('"true" or "false"')
    return word == "true"


def _to_duration(text: str) -> Decimal:
    """Nanoseconds, exactly: a signed decimal number and one unit of ns, us, ms, s, m or h."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None:
        raise _Unconvertible('a duration such as "5s" or "250ms" (units ns, us, ms, s, m, h)')
    sign, number, unit = match.groups()
    nanos = Decimal(number) * _NANOS_PER_UNIT[unit]
    return -nanos if sign == "-" else nanos


def _to_timestamp(text: str) -> int:
    """Nanoseconds since the epoch, from RFC 3339 (``Z``, ``±hh:mm`` or the Python client's ``±hhmm``)
    or an ISO 8601 date, which the docs define as midnight UTC."""
    match = _TIMESTAMP_RE.fullmatch(text.strip())
    if match is None:
        raise _Unconvertible('an RFC 3339 timestamp such as "2026-11-24T09:03:45.5Z" or a date "2026-11-24"')
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    try:
        # Validates the calendar; a time without an offset is read as UTC (the docs don't say).
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError as exc:
        raise _Unconvertible(f"a valid date and time ({exc})") from None
    offset = 0
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise _Unconvertible("a timestamp with a valid UTC offset")
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (-1 if sign == "-" else 1)
    seconds = calendar.timegm(moment.timetuple()) - offset
    return seconds * 10**9 + int((fraction or "").ljust(9, "0"))


def _to_severity(text: str) -> int:
    word = text.strip().upper()
    if word in _SEVERITIES:
        return _SEVERITIES[word]
    if _INT_RE.fullmatch(word) and int(word) in _SEVERITIES.values():
        return int(word)
    raise _Unconvertible(
        "a LogSeverity: DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY "
        "or its number 0, 100, ... 800"
    )


_CONVERTERS: dict[Kind, Callable[[str], Any]] = {
    Kind.STRING: _fold,
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


def _default(kind: Kind) -> Any:
    return {} if kind in _CONTAINERS else _DEFAULTS[kind]


def _from_entry(raw: Any, kind: Kind) -> Any:
    """The entry's JSON value as ``kind``; None when absent or malformed (then it counts as absent)."""
    if raw is None:
        return None
    if kind in _CONTAINERS:
        return raw if isinstance(raw, Mapping) else None
    if kind is Kind.STRING:
        return raw if isinstance(raw, str) else None
    if isinstance(raw, bool):
        return raw if kind is Kind.BOOL else None
    if isinstance(raw, int | float):
        return raw if kind in (Kind.INT, Kind.DOUBLE, Kind.SEVERITY) else None
    if isinstance(raw, str):  # int64 fields, durations and timestamps travel as strings in JSON
        try:
            return _CONVERTERS[kind](raw)
        except _Unconvertible:
            return None
    return None


# -- the LogEntry schema ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    key: str  # the JSON (camelCase) name
    kind: Kind
    fields: Mapping[str, _Spec] | None = None  # a MESSAGE's fields by _proto_name


def _proto_name(name: str) -> str:
    """Protocol buffer field names match in any letter case, camelCase or snake_case alike."""
    return name.replace("_", "").lower()


def _message(*specs: _Spec) -> dict[str, _Spec]:
    return {_proto_name(spec.key): spec for spec in specs}


def _strings(*keys: str) -> list[_Spec]:
    return [_Spec(key, Kind.STRING) for key in keys]


_HTTP_REQUEST = _message(
    *_strings("requestMethod", "requestUrl", "userAgent", "remoteIp", "serverIp", "referer", "protocol"),
    _Spec("status", Kind.INT),
    _Spec("requestSize", Kind.INT),
    _Spec("responseSize", Kind.INT),
    _Spec("cacheFillBytes", Kind.INT),
    _Spec("latency", Kind.DURATION),
    _Spec("cacheLookup", Kind.BOOL),
    _Spec("cacheHit", Kind.BOOL),
    _Spec("cacheValidatedWithOriginServer", Kind.BOOL),
)
_LOG_ENTRY = _message(
    *_strings("logName", "insertId", "trace", "spanId", "textPayload"),
    _Spec("resource", Kind.MESSAGE, _message(_Spec("type", Kind.STRING), _Spec("labels", Kind.MAP))),
    _Spec("timestamp", Kind.TIMESTAMP),
    _Spec("receiveTimestamp", Kind.TIMESTAMP),
    _Spec("severity", Kind.SEVERITY),
    _Spec("httpRequest", Kind.MESSAGE, _HTTP_REQUEST),
    _Spec("labels", Kind.MAP),
    _Spec("traceSampled", Kind.BOOL),
    _Spec(
        "operation",
        Kind.MESSAGE,
        _message(*_strings("id", "producer"), _Spec("first", Kind.BOOL), _Spec("last", Kind.BOOL)),
    ),
    _Spec(
        "sourceLocation",
        Kind.MESSAGE,
        _message(*_strings("file", "function"), _Spec("line", Kind.INT)),
    ),
    _Spec(
        "split",
        Kind.MESSAGE,
        _message(_Spec("uid", Kind.STRING), _Spec("index", Kind.INT), _Spec("totalSplits", Kind.INT)),
    ),
    _Spec("jsonPayload", Kind.STRUCT),
    _Spec("protoPayload", Kind.STRUCT),
    _Spec("metadata", Kind.STRUCT),  # deprecated; its members are searched like a payload's
)

# A field value with its type, and the schema of its members when it is a MESSAGE.
_Typed = tuple[Any, Kind, Mapping[str, _Spec] | None]
_ABSENT = object()


def _dynamic(raw: Any) -> Iterator[_Typed]:
    """A payload value typed as Cloud Logging infers it; an array stands for each of its members."""
    if isinstance(raw, list):
        for item in raw:
            yield from _dynamic(item)
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


def _children(value: Mapping[str, Any], fields: Mapping[str, _Spec] | None) -> Iterator[_Typed]:
    """The typed members of a message (per its schema) or of a map or JSON object (per value)."""
    for key, raw in value.items():
        spec = fields.get(_proto_name(key)) if fields is not None else None
        if spec is None:
            yield from _dynamic(raw)
            continue
        typed = _from_entry(raw, spec.kind)
        if typed is not None:
            yield typed, spec.kind, spec.fields


# -- the AST ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Value:
    """A right-hand value as written; converted to each field type it meets, once."""

    text: str
    quoted: bool
    pos: int
    _converted: dict[Kind, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def is_null(self) -> bool:
        return not self.quoted and self.text == "NULL_VALUE"

    def converted(self, kind: Kind) -> Any:
        """The value as ``kind``, or ``_ABSENT`` when it isn't one (then the comparison fails)."""
        if kind not in self._converted:
            try:
                self._converted[kind] = _CONVERTERS[kind](self.text)
            except _Unconvertible:
                self._converted[kind] = _ABSENT
        return self._converted[kind]


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    ":": operator.eq,  # "has" on a non-string scalar: the docs define ':' for strings only
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Check:
    """One comparator and right-hand value, applied to a typed field value."""

    op: str
    value: Value
    pattern: re.Pattern[str] | None = None

    def __call__(self, raw: Any, kind: Kind, fields: Mapping[str, _Spec] | None) -> bool:
        if self.value.is_null:
            return (kind is Kind.NULL) == (self.op == "=")
        if kind in _CONTAINERS:
            # ':' on an object searches its members: a global restriction scoped to the field.
            return self.op == ":" and any(self(*child) for child in _children(raw, fields))
        if kind is Kind.NULL:
            return False
        if self.pattern is not None:
            if kind is not Kind.STRING:
                return False
            return (self.pattern.search(raw) is not None) == (self.op == "=~")
        rhs = self.value.converted(kind)
        if rhs is _ABSENT:
            return False  # "If an attempted conversion fails, then the comparison fails."
        if kind is Kind.STRING:
            lhs = _fold(raw)
            return rhs in lhs if self.op == ":" else _ORDER[self.op](lhs, rhs)
        return _ORDER[self.op](raw, rhs)


@dataclass(frozen=True)
class FieldRef:
    """A resolved field path: schema-defined JSON keys, then map or payload keys looked up as written."""

    name: str  # as written, for messages
    keys: tuple[str, ...]
    dynamic: tuple[str, ...]
    kind: Kind  # the leaf's type; DYNAMIC below jsonPayload/protoPayload
    fields: Mapping[str, _Spec] | None = None
    fold_keys: bool = False  # protoPayload is a protocol buffer: its names match like _proto_name

    def _parent(self, entry: Mapping[str, Any]) -> Any:
        node: Any = entry
        for key in self.keys:
            node = node.get(key) if isinstance(node, Mapping) else None
            if node is None:
                return None
        return node

    def _walk(self, node: Any) -> list[Any]:
        """Follow the dynamic keys; arrays on the way stand for each of their members."""
        nodes = [node]
        for key in self.dynamic:
            found = []
            for candidate in nodes:
                for item in candidate if isinstance(candidate, list) else [candidate]:
                    if isinstance(item, Mapping):
                        value = _lookup(item, key, self.fold_keys)
                        if value is not _ABSENT:
                            found.append(value)
            nodes = found
        return nodes

    def values(self, entry: Mapping[str, Any]) -> list[_Typed]:
        node = self._parent(entry)
        if not self.dynamic:
            value = _from_entry(node, self.kind)
            if value is None:  # a LogEntry field: "defaulted", compared as its zero value
                return [(_default(self.kind), self.kind, self.fields)]
            return [(value, self.kind, self.fields)]
        if node is None:  # a payload or label field: "missing", so every comparison fails
            return []
        return [typed for found in self._walk(node) for typed in _dynamic(found)]

    def present(self, entry: Mapping[str, Any]) -> bool:
        node = self._parent(entry)
        if node is None:
            return False
        if self.dynamic:
            return bool(self._walk(node))  # a JSON null is present: it is a value
        value = _from_entry(node, self.kind)
        # proto3 scalars carry no presence of their own: set means set to a non-default value.
        return value is not None and (self.kind in _CONTAINERS or value != _default(self.kind))


def _lookup(mapping: Mapping[str, Any], key: str, fold: bool) -> Any:
    if key in mapping:
        return mapping[key]
    if fold:
        for candidate, value in mapping.items():
            if _proto_name(candidate) == _proto_name(key):
                return value
    return _ABSENT


class Node(ABC):
    @abstractmethod
    def matches(self, entry: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class MatchAll(Node):
    def matches(self, entry: Mapping[str, Any]) -> bool:
        return True


@dataclass(frozen=True)
class And(Node):
    parts: tuple[Node, ...]

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return all(part.matches(entry) for part in self.parts)


@dataclass(frozen=True)
class Or(Node):
    parts: tuple[Node, ...]

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return any(part.matches(entry) for part in self.parts)


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return not self.operand.matches(entry)


@dataclass(frozen=True)
class Comparison(Node):
    """FIELD OP VALUE; on an array (or a path through arrays) any member may satisfy it."""

    path: FieldRef
    test: Check

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return any(self.test(*typed) for typed in self.path.values(entry))


@dataclass(frozen=True)
class Presence(Node):
    """FIELD:* — the field is explicitly present."""

    path: FieldRef

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return self.path.present(entry)


@dataclass(frozen=True)
class GlobalRestriction(Node):
    """A bare value: some field of the entry, payload included, "has" it."""

    test: Check

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return self.test(entry, Kind.MESSAGE, _LOG_ENTRY)


@dataclass(frozen=True)
class LogId(Node):
    """log_id("run.googleapis.com/stderr"): the log ID part of logName, compared URL-decoded."""

    log_id: str  # folded

    def matches(self, entry: Mapping[str, Any]) -> bool:
        name = entry.get("logName")
        if not isinstance(name, str):
            return False
        _, sep, tail = name.partition("/logs/")
        return bool(sep) and _fold(unquote(tail)) == self.log_id


@dataclass(frozen=True)
class IpInNet(Node):
    """ip_in_net(FIELD, "10.0.0.0/8"): the field holds an address or range inside the subnet."""

    path: FieldRef
    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return any(
            kind is Kind.STRING and _in_network(raw, self.network) for raw, kind, _ in self.path.values(entry)
        )


def _in_network(raw: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        if "/" in raw:
            candidate = ipaddress.ip_network(raw.strip(), strict=False)
            return candidate.version == network.version and candidate.subnet_of(network)  # type: ignore[arg-type]
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return False
    return address.version == network.version and address in network


# -- regular expressions ------------------------------------------------------------------------------


class _NotRe2(Exception):
    """A construct Python's ``re`` has but RE2 (so Cloud Logging) rejects."""


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_UNSUPPORTED_GROUPS = (
    ("=", "a lookahead"),
    ("!", "a lookahead"),
    ("<=", "a lookbehind"),
    ("<!", "a lookbehind"),
    ("P=", "a named backreference"),
    (">", "an atomic group"),
    ("(", "a conditional group"),
    ("#", "a comment group"),
)


def _compile_regex(pattern: str, where: str) -> re.Pattern[str]:
    # Known gaps against RE2: Python's '$' also matches before a final newline, and its \d, \w, \s
    # are Unicode-aware where RE2's are ASCII.
    try:
        translated = _re2_to_python(pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarnings about set syntax that RE2 reads plainly
            return re.compile(translated)
    except _NotRe2 as exc:
        raise FilterError(
            f"regular expression {pattern!r} at {where} uses {exc}, which RE2 (and so Cloud Logging) "
            "does not support"
        ) from None
    except re.error as exc:
        raise FilterError(f"invalid regular expression {pattern!r} at {where}: {exc.msg}") from None


def _re2_to_python(pattern: str) -> str:
    """Translate the RE2 syntax that Python spells differently; reject what RE2 doesn't have."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i = _translate_escape(pattern, i, in_class, out)
        elif in_class:
            if pattern.startswith("[:", i) and (end := pattern.find(":]", i)) > 0:
                name = pattern[i + 2 : end]
                if name.lstrip("^") not in _POSIX_CLASSES:
                    raise re.error(f"unknown character class [:{name}:]")
                if name.startswith("^"):
                    raise re.error(f"negated class [:{name}:] inside a set is not supported by the emulator")
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
            in_class = c != "]"
            out.append("\\[" if c == "[" else c)
            i += 1
        elif c == "[":
            in_class = True
            out.append(c)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # a leading ']' is a literal in RE2
                out.append("\\]")
                i += 1
        elif pattern.startswith("(?", i):
            rest = pattern[i + 2 :]
            for prefix, what in _UNSUPPORTED_GROUPS:
                if rest.startswith(prefix):
                    raise _NotRe2(what)
            if rest.startswith("<"):  # RE2's (?<name>re) is Python's (?P<name>re)
                out.append("(?P<")
                i += 3
                continue
            flags = re.match(r"[A-Za-z-]*[:)]", rest)
            if flags and any(flag not in "imsU-" for flag in flags.group()[:-1]):
                raise _NotRe2(f"the flags (?{flags.group()}")
            out.append("(?")
            i += 2
        else:
            if c in "*+?}" and pattern.startswith("+", i + 1) and _closes_quantifier(pattern, i):
                raise _NotRe2("a possessive quantifier")
            out.append(c)
            i += 1
    return "".join(out)


def _closes_quantifier(pattern: str, i: int) -> bool:
    return pattern[i] != "}" or re.search(r"\{\d+(?:,\d*)?$", pattern[:i]) is not None


def _translate_escape(pattern: str, i: int, in_class: bool, out: list[str]) -> int:
    nxt = pattern[i + 1 : i + 2]
    if nxt == "Q":  # \Q...\E quotes a literal run
        end = pattern.find("\\E", i + 2)
        out.append(re.escape(pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]))
        return len(pattern) if end < 0 else end + 2
    if nxt == "z":
        out.append("\\Z")
        return i + 2
    if nxt == "Z":
        raise _NotRe2("\\Z (write \\z or $)")
    if nxt.isdigit() and nxt != "0" and not in_class:
        octal = re.match(r"[1-7][0-7]{1,2}", pattern[i + 1 :])
        if octal is None:
            raise _NotRe2("a backreference")
        out.append("\\" + octal.group().rjust(3, "0"))  # RE2 reads \12 as octal; Python wants \012
        return i + 1 + len(octal.group())
    out.append(pattern[i : i + 2])
    return i + 2


# -- the tokenizer ------------------------------------------------------------------------------------


class _T(Enum):
    WORD = "word"
    STRING = "string"
    DOT = "'.'"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    MINUS = "'-'"
    STAR = "'*'"
    CMP = "comparator"
    EOF = "the end of the filter"


@dataclass(frozen=True)
class _Token:
    kind: _T
    text: str  # a STRING's decoded value; otherwise the source text
    start: int
    end: int


_PUNCTUATION = {
    "(": _T.LPAREN,
    ")": _T.RPAREN,
    ",": _T.COMMA,
    "*": _T.STAR,
    ".": _T.DOT,
    "-": _T.MINUS,
}
_WORD_STOP = frozenset("()\":=<>!~,*.'")  # '-' and '+' may appear inside unquoted text
_COMPARATORS = ("<=", ">=", "!=", "=~", "!~", "=", "<", ">", ":")
_BAD_COMPARATORS = {"==": "'='", "<>": "'!='", "=>": "'>='", "=<": "'<='", "!:": "NOT FIELD:VALUE"}
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_UNSUPPORTED_FUNCTIONS = frozenset({"sample", "search", "cast", "regexp_extract", "source"})


def _a(kind: Kind) -> str:
    return ("an " if kind.value[0] in "aeiouAEIOU" else "a ") + kind.value


def _is_keyword(token: _Token, word: str) -> bool:
    return token.kind is _T.WORD and token.text == word


def _describe(token: _Token) -> str:
    if token.kind is _T.STRING:
        shown = token.text if len(token.text) <= 30 else token.text[:27] + "..."
        return f"the string {shown!r}"
    if token.kind in (_T.WORD, _T.CMP):
        return f"'{token.text}'"
    return token.kind.value


def _path_name(path: list[_Token]) -> str:
    return ".".join(
        '"' + s.text.replace("\\", "\\\\").replace('"', '\\"') + '"' if s.kind is _T.STRING else s.text
        for s in path
    )


# -- the parser ---------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the documented grammar, with NOT > OR > AND:

    conjunction := disjunction { ["AND"] disjunction }     -- juxtaposition is AND
    disjunction := term { "OR" term }
    term        := ("NOT" | "-") term | group
    group       := "(" conjunction ")" | atom
    atom        := FIELD OP VALUE | FIELD OP "(" values ")" | FIELD ":*" | VALUE | function(...)

    The same boolean grammar parses a parenthesised right-hand side, whose atoms are values.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize()
        self.index = 0
        self.depth = 0  # open parentheses, bounded so parsing and evaluation stay clear of the stack limit

    # -- positions and errors ---------------------------------------------------------------------------
    def _at(self, pos: int) -> str:
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        if "\n" not in self.text:
            return f"column {column}"
        return f"line {self.text.count(chr(10), 0, pos) + 1}, column {column}"

    def _unexpected(self, token: _Token) -> FilterError:
        at = self._at(token.start)
        if token.kind is _T.RPAREN:
            return FilterError(f"unbalanced ')' at {at}: no matching '('")
        if token.kind is _T.CMP:
            return FilterError(
                f"unexpected comparator '{token.text}' at {at}: a comparison is FIELD {token.text} VALUE "
                "with a field path on the left (quote values that contain operator characters)"
            )
        if token.kind is _T.STAR:
            return FilterError(f"'*' at {at} is only allowed in the presence test FIELD:*")
        if token.kind is _T.COMMA:
            return FilterError(f"unexpected ',' at {at}: commas only separate function arguments")
        if token.kind is _T.DOT:
            return FilterError(
                f"unexpected '.' at {at}: write field paths without spaces and quote values that start with '.'"
            )
        return FilterError(f"unexpected {_describe(token)} at {at}")

    # -- tokens ------------------------------------------------------------------------------------------
    def _tokenize(self) -> list[_Token]:
        text, n, i = self.text, len(self.text), 0
        tokens: list[_Token] = []
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
            elif text.startswith("--", i):  # a comment runs to the end of the line
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif c == '"':
                tokens.append(self._string(i))
                i = tokens[-1].end
            elif c == "'":
                raise FilterError(f"single quote at {self._at(i)}: strings are written in double quotes")
            elif c in _PUNCTUATION:
                tokens.append(_Token(_PUNCTUATION[c], c, i, i + 1))
                i += 1
            elif c in "=!<>~:":
                tokens.append(self._comparator(i))
                i = tokens[-1].end
            else:
                j = i
                while j < n and not text[j].isspace() and text[j] not in _WORD_STOP:
                    j += 1
                tokens.append(_Token(_T.WORD, text[i:j], i, j))
                i = j
        tokens.append(_Token(_T.EOF, "", n, n))
        return tokens

    def _comparator(self, i: int) -> _Token:
        pair = self.text[i : i + 2]
        if pair in _BAD_COMPARATORS:
            raise FilterError(f"unknown comparator '{pair}' at {self._at(i)}; write {_BAD_COMPARATORS[pair]}")
        for op in _COMPARATORS:
            if self.text.startswith(op, i):
                return _Token(_T.CMP, op, i, i + len(op))
        if self.text[i] == "!":
            raise FilterError(
                f"'!' at {self._at(i)} is not an operator: negate with NOT or '-', compare with '!=' or '!~'"
            )
        raise FilterError(f"'~' at {self._at(i)} is only valid in the comparators '=~' and '!~'")

    def _string(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        out: list[str] = []
        i = start + 1
        while i < n:
            c = text[i]
            if c == '"':
                return _Token(_T.STRING, "".join(out), start, i + 1)
            if c != "\\":
                out.append(c)
                i += 1
                continue
            escape = text[i + 1 : i + 2]
            if escape in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[escape])
                i += 2
            elif escape in _HEX_ESCAPES:
                width = _HEX_ESCAPES[escape]
                digits = text[i + 2 : i + 2 + width]
                if len(digits) != width or not _HEX_RE.fullmatch(digits) or int(digits, 16) > 0x10FFFF:
                    raise FilterError(
                        f"bad escape '\\{escape}' at {self._at(i)}: it takes {width} hexadecimal digits"
                    )
                out.append(chr(int(digits, 16)))
                i += 2 + width
            elif escape:
                # Other escapes stay as written, so a regular expression such as "\d+" reaches RE2 intact.
                out.append("\\" + escape)
                i += 2
            else:
                break
        raise FilterError(f"unterminated string starting at {self._at(start)}: no closing '\"'")

    def _peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def _adjacent(self, before: _Token, after: _Token) -> bool:
        return before.end == after.start

    # -- boolean structure ------------------------------------------------------------------------------
    def parse(self) -> Node:
        if self._peek().kind is _T.EOF:
            return MatchAll()
        node = self._conjunction(self._restriction, values=False)
        token = self._peek()
        if token.kind is not _T.EOF:
            raise self._unexpected(token)
        return node

    def _starts_operand(self, token: _Token) -> bool:
        if token.kind is _T.WORD:
            return token.text not in ("AND", "OR")
        return token.kind in (_T.STRING, _T.LPAREN, _T.MINUS)

    def _need_operand(self, operator_token: _Token) -> None:
        following = self._peek()
        if self._starts_operand(following):
            return
        at = self._at(operator_token.start)
        if following.kind is _T.EOF:
            raise FilterError(f"'{operator_token.text}' at {at} has nothing after it")
        raise FilterError(f"'{operator_token.text}' at {at} is followed by {_describe(following)}")

    def _conjunction(self, atom: Callable[[], Node], values: bool) -> Node:
        parts = [self._disjunction(atom, values)]
        while True:
            token = self._peek()
            if _is_keyword(token, "AND"):
                self._advance()
                self._need_operand(token)
            elif not self._starts_operand(token):
                break
            parts.append(self._disjunction(atom, values))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _disjunction(self, atom: Callable[[], Node], values: bool) -> Node:
        parts = [self._term(atom, values)]
        while _is_keyword(self._peek(), "OR"):
            token = self._advance()
            self._need_operand(token)
            parts.append(self._term(atom, values))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _term(self, atom: Callable[[], Node], values: bool) -> Node:
        negations = 0
        while True:
            token = self._peek()
            minus = token.kind is _T.MINUS and not (values and self._negative_number_ahead())
            if not (_is_keyword(token, "NOT") or minus):
                break
            self._advance()
            self._need_operand(token)
            negations += 1
        node = self._group(atom, values)
        return Not(node) if negations % 2 else node  # NOT NOT x is x; a loop keeps long chains shallow

    def _group(self, atom: Callable[[], Node], values: bool) -> Node:
        opening = self._peek()
        if opening.kind is not _T.LPAREN:
            return atom()
        self._advance()
        if self._peek().kind is _T.RPAREN:
            raise FilterError(f"empty parentheses at {self._at(opening.start)}")
        if self.depth == MAX_NESTING:
            raise FilterError(f"parentheses nest more than {MAX_NESTING} deep at {self._at(opening.start)}")
        self.depth += 1
        node = self._conjunction(atom, values)
        self.depth -= 1
        closing = self._peek()
        if closing.kind is _T.RPAREN:
            self._advance()
            return node
        if closing.kind is _T.EOF:
            raise FilterError(f"unbalanced '(' at {self._at(opening.start)}: no matching ')'")
        raise self._unexpected(closing)

    def _negative_number_ahead(self) -> bool:
        minus, number = self._peek(), self._peek(1)
        return number.kind is _T.WORD and self._adjacent(minus, number) and number.text[:1].isdigit()

    # -- restrictions -----------------------------------------------------------------------------------
    def _restriction(self) -> Node:
        token = self._peek()
        at = self._at(token.start)
        if token.kind is _T.WORD:
            if token.text in ("AND", "OR"):
                raise FilterError(f"'{token.text}' at {at} has nothing before it")
            if token.text in ("&&", "||"):
                raise FilterError(
                    f"'{token.text}' at {at} is not an operator; write {'AND' if token.text == '&&' else 'OR'}"
                )
            following = self._peek(1)
            if following.kind is _T.LPAREN and self._adjacent(token, following):
                return self._function()
        elif token.kind is not _T.STRING:
            raise self._unexpected(token)
        path = self._path()
        if self._peek().kind is _T.CMP:
            return self._comparison(path)
        if len(path) > 1 and any(segment.kind is _T.STRING for segment in path):
            name = _path_name(path)
            raise FilterError(f'field {name} at {at} needs a comparison, such as {name}:* or {name}="value"')
        value = self._value_of(path)
        if value.is_null:
            raise FilterError(f"NULL_VALUE at {at} needs a field, as in jsonPayload.field=NULL_VALUE")
        return GlobalRestriction(Check(":", value))

    def _path(self) -> list[_Token]:
        """A dotted path of words and quoted strings, written without spaces."""
        segments = [self._advance()]
        while (dot := self._peek()).kind is _T.DOT and self._adjacent(segments[-1], dot):
            self._advance()
            following = self._peek()
            if following.kind not in (_T.WORD, _T.STRING) or not self._adjacent(dot, following):
                raise FilterError(f"'.' at {self._at(dot.start)} must be followed by a field name")
            segments.append(self._advance())
        return segments

    def _value_of(self, path: list[_Token]) -> Value:
        if len(path) == 1 and path[0].kind is _T.STRING:
            return Value(path[0].text, quoted=True, pos=path[0].start)
        if any(segment.kind is _T.STRING for segment in path):
            raise FilterError(
                f"the value at {self._at(path[0].start)} mixes quoted and unquoted text; quote all of it"
            )
        # The docs ask for quotes around text containing '.', but such text is unambiguous here.
        return Value(".".join(segment.text for segment in path), quoted=False, pos=path[0].start)

    def _comparison(self, path: list[_Token]) -> Node:
        op = self._advance()
        if len(path) == 1 and path[0].kind is _T.STRING:
            raise FilterError(
                f"the left side of '{op.text}' at {self._at(op.start)} is the string {path[0].text!r}; "
                "it must be a field path such as jsonPayload.message"
            )
        ref = self._field(path)
        if op.text == ":" and self._peek().kind is _T.STAR:
            star = self._advance()
            following = self._peek()
            if following.kind in (_T.WORD, _T.STRING) and self._adjacent(star, following):
                raise FilterError(
                    f"wildcards are not supported: '*' at {self._at(star.start)} only tests presence, "
                    f"as in {ref.name}:*"
                )
            return Presence(ref)
        if self._peek().kind is _T.LPAREN:
            # FIELD OP (a OR NOT b ...): the field and comparator apply to each value inside.
            return self._group(lambda: Comparison(ref, self._test(ref, op, self._value(op))), values=True)
        return Comparison(ref, self._test(ref, op, self._value(op)))

    def _value(self, op: _Token) -> Value:
        token = self._peek()
        if token.kind is _T.STRING:
            self._advance()
            return Value(token.text, quoted=True, pos=token.start)
        if token.kind in (_T.STAR, _T.DOT):
            raise self._unexpected(token)
        if token.kind is _T.MINUS and self._negative_number_ahead():
            self._advance()
            number = self._value_of(self._path())
            return Value("-" + number.text, quoted=False, pos=token.start)
        if token.kind is _T.WORD and token.text not in _KEYWORDS:
            following = self._peek(1)
            if following.kind is _T.LPAREN and self._adjacent(token, following):
                raise FilterError(
                    f"the function call {token.text}() at {self._at(token.start)} can't be a comparison value"
                )
            return self._value_of(self._path())
        raise FilterError(
            f"expected a value after '{op.text}' at {self._at(op.start)}, found {_describe(token)}"
        )

    def _field(self, path: list[_Token]) -> FieldRef:
        """Resolve a path against the LogEntry schema; an undefined field is an error, as in the docs."""
        name, at = _path_name(path), self._at(path[0].start)
        spec = _LOG_ENTRY.get(_proto_name(path[0].text))
        if spec is None:
            raise FilterError(
                f"unknown field '{path[0].text}' at {at}: a field path starts with a LogEntry field such as "
                "logName, resource, severity, timestamp, textPayload, jsonPayload, labels or httpRequest"
            )
        keys = [spec.key]
        for index in range(1, len(path)):
            parent = _path_name(path[:index])
            if spec.kind is Kind.MESSAGE and spec.fields is not None:
                child = spec.fields.get(_proto_name(path[index].text))
                if child is None:
                    known = ", ".join(s.key for s in spec.fields.values())
                    raise FilterError(f"unknown field {name} at {at}: {parent} has the fields {known}")
                spec = child
                keys.append(child.key)
                continue
            rest = tuple(segment.text for segment in path[index:])
            if spec.kind is Kind.MAP:
                if len(rest) > 1:
                    raise FilterError(
                        f"{name} at {at} reaches below a value of {parent}, whose values are strings; "
                        f'quote a key that contains dots: {parent}."{".".join(rest)}"'
                    )
                return FieldRef(name, tuple(keys), rest, Kind.STRING)
            if spec.kind is Kind.STRUCT:
                return FieldRef(name, tuple(keys), rest, Kind.DYNAMIC, fold_keys=spec.key == "protoPayload")
            raise FilterError(
                f"{parent} is {_a(spec.kind)} and has no field {path[index].text!r} ({name} at {at})"
            )
        return FieldRef(name, tuple(keys), (), spec.kind, spec.fields)

    def _test(self, ref: FieldRef, op: _Token, value: Value) -> Check:
        """Check the comparison against the field's type now, so type errors surface at compile time."""
        at, kind = self._at(value.pos), ref.kind
        if value.is_null:
            if kind is not Kind.DYNAMIC:
                raise FilterError(
                    f"NULL_VALUE at {at} matches JSON nulls in jsonPayload or protoPayload; "
                    f"{ref.name} is {_a(kind)}"
                )
            if op.text not in ("=", "!="):
                raise FilterError(
                    f"NULL_VALUE at {at} can only be compared with '=' or '!=', not '{op.text}'"
                )
            return Check(op.text, value)
        if op.text in ("=~", "!~"):
            if kind not in (Kind.STRING, Kind.DYNAMIC):
                raise FilterError(
                    f"regular expressions only match string fields; {ref.name} is {_a(kind)} "
                    f"('{op.text}' at {self._at(op.start)})"
                )
            return Check(op.text, value, _compile_regex(value.text, at))
        if kind in _CONTAINERS and op.text != ":":
            raise FilterError(
                f"{ref.name} is {_a(kind)}: compare one of its fields, or search inside it with "
                f"{ref.name}:VALUE ('{op.text}' at {self._at(op.start)})"
            )
        if kind in _CONVERTERS:
            # The docs say a failed conversion makes the comparison fail; for fields whose type is
            # fixed we reject it instead, so a typo such as severity>=EROR can't match nothing silently.
            try:
                _CONVERTERS[kind](value.text)
            except _Unconvertible as exc:
                raise FilterError(
                    f"{ref.name} is {_a(kind)}, but {value.text!r} at {at} is not {exc}"
                ) from None
        return Check(op.text, value)

    # -- functions --------------------------------------------------------------------------------------
    def _function(self) -> Node:
        name_token = self._advance()
        opening = self._advance()
        name, at = name_token.text, self._at(name_token.start)
        if name.lower() in _UNSUPPORTED_FUNCTIONS:
            raise FilterError(f"the function {name}() at {at} is not supported by the Logging emulator")
        if name.lower() not in ("log_id", "ip_in_net"):
            raise FilterError(
                f"unknown function {name}() at {at}; the emulator supports log_id() and ip_in_net()"
            )
        args: list[list[_Token]] = []
        if self._peek().kind is _T.RPAREN:
            self._advance()
        else:
            while True:
                token = self._peek()
                if token.kind not in (_T.WORD, _T.STRING) or token.text in _KEYWORDS:
                    raise FilterError(
                        f"expected an argument of {name}() at {self._at(token.start)}, found {_describe(token)}"
                    )
                args.append(self._path())
                separator = self._advance()
                if separator.kind is _T.RPAREN:
                    break
                if separator.kind is _T.EOF:
                    raise FilterError(f"unbalanced '(' at {self._at(opening.start)}: no matching ')'")
                if separator.kind is not _T.COMMA:
                    raise self._unexpected(separator)
        node = self._log_id(name, at, args) if name.lower() == "log_id" else self._ip_in_net(name, at, args)
        if self._peek().kind is _T.CMP:
            raise FilterError(f"{name}() at {at} is a restriction on its own; it can't be compared")
        return node

    def _log_id(self, name: str, at: str, args: list[list[_Token]]) -> Node:
        if len(args) != 1:
            raise FilterError(
                f'{name}() at {at} takes one argument, a log ID such as "run.googleapis.com/stdout"'
            )
        return LogId(_fold(unquote(self._value_of(args[0]).text)))

    def _ip_in_net(self, name: str, at: str, args: list[list[_Token]]) -> Node:
        if len(args) != 2:
            raise FilterError(
                f'{name}() at {at} takes two arguments: a field and a subnet such as "10.0.0.0/8"'
            )
        ref = self._field(args[0])
        if ref.kind not in (Kind.STRING, Kind.DYNAMIC):
            raise FilterError(f"{name}() at {at} needs a string field; {ref.name} is {_a(ref.kind)}")
        subnet = self._value_of(args[1]).text
        try:
            network = ipaddress.ip_network(subnet.strip(), strict=False)
        except ValueError:
            raise FilterError(f"{name}() at {at}: {subnet!r} is not a legal IP address or range") from None
        return IpInNet(ref, network)
