"""Fault switches: named, deliberate misbehaviours of the service.

The smoke suite must fail when the service is broken, so each failure mode it claims to catch is a
switch here. All switches live in one registry (name → one-line description); a fault is added by
adding a line to ``REGISTRY`` and testing ``faults.on(NAME)`` at the one place it bites. ``on`` refuses
names missing from the registry, so a typo at a call site fails loudly instead of never firing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

ARCHIVE_NO_ENQUEUE = "archive-no-enqueue"

REGISTRY: Mapping[str, str] = MappingProxyType(
    {
        ARCHIVE_NO_ENQUEUE: "the archive hook never enqueues the consolidation (PATCH still answers 200)",
    }
)

ENV_VAR = "EMERGENCE_FAULTS"


class UnknownFaultError(ValueError):
    """A fault name that is not in the registry."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        unknown = ", ".join(self.names)
        known = ", ".join(sorted(REGISTRY))
        super().__init__(f"unknown fault(s): {unknown} (known: {known})")


def split_names(value: str | None) -> list[str]:
    """Names from a comma-separated list such as ``$EMERGENCE_FAULTS`` (blanks ignored)."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


@dataclass(frozen=True)
class FaultSet:
    """The faults switched on for this process."""

    active: frozenset[str] = frozenset()

    @classmethod
    def from_names(cls, names: Iterable[str]) -> FaultSet:
        chosen = frozenset(names)
        unknown = chosen - REGISTRY.keys()
        if unknown:
            raise UnknownFaultError(unknown)
        return cls(chosen)

    def on(self, name: str) -> bool:
        if name not in REGISTRY:
            raise KeyError(f"fault {name!r} is not in faults.REGISTRY")
        return name in self.active

    def describe(self) -> str:
        return ", ".join(sorted(self.active)) or "none"
