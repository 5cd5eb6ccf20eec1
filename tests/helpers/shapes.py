"""Conformance fixtures and the shape comparison of an emulator's answer with Google's.

A fixture is ``tests/conformance/fixtures/NAME.json``: ``{"source": "<the public document or example it
follows>", "payload": {...}}``, the payload in the REST/JSON form (camelCase, int64 as strings, enums as names,
proto3 defaults omitted). :func:`assert_same_shape` compares field names, JSON types and nesting, not
values: names, ids and timestamps legitimately differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parents[1] / "conformance" / "fixtures"

# Maps whose keys are data, not schema (an entry's own labels, the service's JSON, resource limits):
# only their values' types are compared. A monitored resource's or a metric's labels are schema.
FREE_MAPS = ("$.labels", "$.jsonPayload")
FREE_MAP_SUFFIXES = (".limits", ".annotations")


@dataclass(frozen=True)
class Fixture:
    name: str
    source: str
    payload: Any

    def text(self) -> str:
        return json.dumps(self.payload)


def load(name: str) -> Fixture:
    raw = json.loads((FIXTURES / f"{name}.json").read_text())
    return Fixture(name, raw["source"], raw["payload"])


def all_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_default(value: Any) -> bool:
    """A proto3 default: the same as an absent field in proto3 JSON."""
    return value in (0, "", False, None) or value == [] or value == {}


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def shape_differences(
    google: Any, emulator: Any, *, optional: Iterable[str] = (), path: str = "$"
) -> list[str]:
    """Every place where ``emulator`` differs in shape from ``google``, one line each.

    ``optional``: field names Google sends that the emulator may leave out (say why at the call site).
    A field the emulator adds is a difference unless it holds a proto3 default. Lists are compared
    element by element (an extra emulator element against Google's last one).
    """
    optional = frozenset(optional)
    found: list[str] = []
    if _kind(google) != _kind(emulator):
        return [
            f"{path}: Google sends {_kind(google)} {_show(google)}, the emulator {_kind(emulator)} {_show(emulator)}"
        ]
    if isinstance(google, dict):
        free = path in FREE_MAPS or path.endswith(FREE_MAP_SUFFIXES)
        for key in sorted(google.keys() - emulator.keys()):
            if not free and key not in optional:
                found.append(
                    f"{path}.{key}: Google sends it ({_show(google[key])}), the emulator leaves it out"
                )
        for key in sorted(emulator.keys() - google.keys()):
            if not free and key not in optional and not _is_default(emulator[key]):
                found.append(
                    f"{path}.{key}: the emulator sends {_show(emulator[key])}, Google's payload has no such field"
                )
        for key in sorted(google.keys() & emulator.keys()):
            found += shape_differences(google[key], emulator[key], optional=optional, path=f"{path}.{key}")
        if free:  # the keys are data; the values must still be of one kind
            kinds = {_kind(v) for v in google.values()}
            for key, value in emulator.items():
                if kinds and _kind(value) not in kinds and key not in google:
                    found.append(
                        f"{path}.{key}: the emulator sends {_kind(value)}, Google's values are {kinds}"
                    )
    elif isinstance(google, list) and google and emulator:
        for i, item in enumerate(emulator):
            found += shape_differences(
                google[min(i, len(google) - 1)], item, optional=optional, path=f"{path}[{i}]"
            )
    return found


def assert_same_shape(fixture: Fixture, emulator: Any, *, optional: Iterable[str] = (), at: str = "") -> None:
    """Fail with every difference, where it is, and the document the fixture follows."""
    google = fixture.payload
    for step in filter(None, at.split(".")):
        google = google[int(step)] if step.isdigit() else google[step]
    differences = shape_differences(google, emulator, optional=optional, path="$" + (f".{at}" if at else ""))
    if differences:
        listed = "\n  ".join(differences)
        raise AssertionError(
            f"the emulator's answer differs in shape from Google's ({fixture.name}.json):\n  {listed}\n"
            f"Google's shape follows: {fixture.source}\n"
            "When they disagree the emulator is wrong: fix the emulator (src/cloudrun_smoke/local/)."
        )
