"""The syntax tree of a compiled query, and its evaluation against one LogEntry.

``NOT`` of a comparison on a missing payload or label field succeeds (every comparison on it fails);
on an array, or a path through arrays, any member may satisfy a comparison.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cloudrun_smoke.local.log_query.schema import LOG_ENTRY, FieldSpec, Typed, inferred, members, proto_name
from cloudrun_smoke.local.log_query.values import (
    ABSENT,
    CONTAINERS,
    CONVERTERS,
    Kind,
    Unconvertible,
    fold,
    from_entry,
    zero_value,
)


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
        """The value as ``kind``, or ``ABSENT`` when it isn't one (then the comparison fails)."""
        if kind not in self._converted:
            try:
                self._converted[kind] = CONVERTERS[kind](self.text)
            except Unconvertible:
                self._converted[kind] = ABSENT
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

    def __call__(self, raw: Any, kind: Kind, fields: Mapping[str, FieldSpec] | None) -> bool:
        if self.value.is_null:
            return (kind is Kind.NULL) == (self.op == "=")
        if kind in CONTAINERS:
            # ':' on an object searches its members: a global restriction scoped to the field.
            return self.op == ":" and any(self(*child) for child in members(raw, fields))
        if kind is Kind.NULL:
            return False
        if self.pattern is not None:
            if kind is not Kind.STRING:
                return False
            return (self.pattern.search(raw) is not None) == (self.op == "=~")
        rhs = self.value.converted(kind)
        if rhs is ABSENT:
            return False  # "If an attempted conversion fails, then the comparison fails."
        if kind is Kind.STRING:
            lhs = fold(raw)
            return rhs in lhs if self.op == ":" else _ORDER[self.op](lhs, rhs)
        return _ORDER[self.op](raw, rhs)


@dataclass(frozen=True)
class FieldRef:
    """A resolved field path: schema-defined JSON keys, then map or payload keys looked up as written."""

    name: str  # as written, for messages
    keys: tuple[str, ...]
    dynamic: tuple[str, ...]
    kind: Kind  # the leaf's type; DYNAMIC below jsonPayload/protoPayload
    fields: Mapping[str, FieldSpec] | None = None
    fold_keys: bool = False  # protoPayload is a protocol buffer: its names match like proto_name

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
                        if value is not ABSENT:
                            found.append(value)
            nodes = found
        return nodes

    def values(self, entry: Mapping[str, Any]) -> list[Typed]:
        node = self._parent(entry)
        if not self.dynamic:
            value = from_entry(node, self.kind)
            if value is None:  # a LogEntry field: "defaulted", compared as its zero value
                return [(zero_value(self.kind), self.kind, self.fields)]
            return [(value, self.kind, self.fields)]
        if node is None:  # a payload or label field: "missing", so every comparison fails
            return []
        return [typed for found in self._walk(node) for typed in inferred(found)]

    def present(self, entry: Mapping[str, Any]) -> bool:
        node = self._parent(entry)
        if node is None:
            return False
        if self.dynamic:
            return bool(self._walk(node))  # a JSON null is present: it is a value
        value = from_entry(node, self.kind)
        # proto3 scalars carry no presence of their own: set means set to a non-default value.
        return value is not None and (self.kind in CONTAINERS or value != zero_value(self.kind))


def _lookup(mapping: Mapping[str, Any], key: str, fold: bool) -> Any:
    if key in mapping:
        return mapping[key]
    if fold:
        for candidate, value in mapping.items():
            if proto_name(candidate) == proto_name(key):
                return value
    return ABSENT


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
        return self.test(entry, Kind.MESSAGE, LOG_ENTRY)


@dataclass(frozen=True)
class LogId(Node):
    """log_id("run.googleapis.com/stderr"): the log ID part of logName, compared URL-decoded."""

    log_id: str  # folded

    def matches(self, entry: Mapping[str, Any]) -> bool:
        name = entry.get("logName")
        if not isinstance(name, str):
            return False
        _, sep, tail = name.partition("/logs/")
        return bool(sep) and fold(unquote(tail)) == self.log_id


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
