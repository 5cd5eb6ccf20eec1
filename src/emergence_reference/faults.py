"""Fault switches: named, deliberate misbehaviours of the service, and correct variants of it.

The smoke suite must fail when the service is broken, so each failure mode it claims to catch is a
fault here; it must also accept every behaviour the contract allows, so each allowed variation is a
variant here. All switches live in one registry (name → kind, description, default parameter); a
switch is added by adding an entry and testing ``faults.on(NAME)`` at the one place it bites. ``on``
refuses names missing from the registry, so a typo at a call site fails loudly instead of never firing.

Syntax: ``NAME`` or, for a parameterised switch, ``NAME=VALUE`` (``archive-slow=800``,
``queue-slow=3``); ``--fault`` is repeatable and ``$EMERGENCE_FAULTS`` is comma-separated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ENV_VAR = "EMERGENCE_FAULTS"

FAULT = "fault"
VARIANT = "variant"

# -- faults --------------------------------------------------------------------------------------------
ARCHIVE_NO_ENQUEUE = "archive-no-enqueue"
ARCHIVE_IGNORED = "archive-ignored"
ENQUEUE_FAILS = "enqueue-fails"
CONSOLIDATION_HANGS = "consolidation-hangs"
CONSOLIDATION_WRONG_THREAD = "consolidation-wrong-thread"
CONSOLIDATED_AT_MISSING = "consolidated-at-missing"
REARCHIVE_ENQUEUES = "rearchive-enqueues"
LLM_UNREACHABLE = "llm-unreachable"
PREFERENCES_UPSERT_FAILS = "preferences-upsert-fails"
BATCH_MISSING_FIELD = "batch-missing-field"
BATCH_COUNTS_OFF = "batch-counts-off"
BATCH_IGNORES_LIMIT = "batch-ignores-limit"
BATCH_RECONSOLIDATES = "batch-reconsolidates"
BATCH_LOG_DISAGREES = "batch-log-disagrees"
TEND_GARDEN_500 = "tend-garden-500"
PREFERENCES_NOT_PERSISTED = "preferences-not-persisted"
PREFERENCES_NO_DEDUP = "preferences-no-dedup"
PREFERENCES_WRONG_USER = "preferences-wrong-user"
SEARCH_LEAKS = "search-leaks"
MEMORY_FORGETS = "memory-forgets"
ARCHIVE_SLOW = "archive-slow"
QUEUE_SLOW = "queue-slow"
API_HEALTH_503 = "api-health-503"
HEALTHZ_NOT_READY = "healthz-not-ready"
DEV_BYPASS_ACCEPTED = "dev-bypass-accepted"
CONSOLIDATION_FAILS_SOME = "consolidation-fails-some"
MEMORY_CREEP = "memory-creep"
CPU_BURN = "cpu-burn"
SLOW_READS = "slow-reads"
LATENCY_FACTOR = "latency-factor"
SERVER_ERRORS = "server-errors"
NEIGHBOURS_FAIL = "neighbours-fail"
NEIGHBOURS_SPARED = "neighbours-spared"
SHUTDOWN_DROPS_QUEUE = "shutdown-drops-queue"

# Other users of the service (the local stack's neighbours): the two switches above pick them by id.
NEIGHBOUR_PREFIX = "neighbour-"

# -- correct variants ----------------------------------------------------------------------------------
ARCHIVED_BOOL = "archived-bool"
HARD_DELETE = "hard-delete"
HEALTH_OK = "health-ok"
PREFERENCES_IN_STATS = "preferences-in-stats"
JSON_LOGS = "json-logs"
SLOW_START = "slow-start"
LLM_LATENCY = "llm-latency"
TRANSIENT_503 = "transient-503"
SHUTDOWN_DRAINS = "shutdown-drains"


@dataclass(frozen=True)
class Switch:
    kind: str
    description: str
    default: float | None = None
    """The parameter's value when the name is given alone; None for a switch without a parameter."""
    unit: str = ""


SWITCHES: Mapping[str, Switch] = MappingProxyType(
    {
        ARCHIVE_NO_ENQUEUE: Switch(
            FAULT, "the archive hook never enqueues the consolidation (PATCH still 200)"
        ),
        ARCHIVE_IGNORED: Switch(
            FAULT, "PATCH archived=true answers 200 but leaves the thread unarchived (nothing enqueued)"
        ),
        ENQUEUE_FAILS: Switch(
            FAULT, "enqueueing raises: '[Thread Archiving] Failed to enqueue' WARNING, PATCH 200"
        ),
        CONSOLIDATION_HANGS: Switch(FAULT, "a queued consolidation starts and never completes"),
        CONSOLIDATION_WRONG_THREAD: Switch(
            FAULT, "the queue's lines name another thread id than the one it consolidated"
        ),
        CONSOLIDATED_AT_MISSING: Switch(
            FAULT, "consolidations store and log their concepts but never set the thread's consolidated_at"
        ),
        REARCHIVE_ENQUEUES: Switch(
            FAULT, "PATCH archived=true on an already archived thread enqueues a second consolidation"
        ),
        LLM_UNREACHABLE: Switch(
            FAULT,
            "every consolidation fails as with an unreachable LLM: ERROR lines, then 'consolidated: 0 new "
            "concepts'; the batch says success and counts the failure as skipped; tend-garden 500",
        ),
        PREFERENCES_UPSERT_FAILS: Switch(
            FAULT,
            "the preference batch holds duplicate ids: 'Vectorisation préférences impossible' ERROR, "
            "thread still consolidated",
        ),
        BATCH_MISSING_FIELD: Switch(FAULT, "consolidate-archived answers without 'skipped_count'"),
        BATCH_COUNTS_OFF: Switch(
            FAULT, "consolidate-archived reports total_archived one higher than processed"
        ),
        BATCH_IGNORES_LIMIT: Switch(
            FAULT, "consolidate-archived processes every archived thread whatever 'limit'"
        ),
        BATCH_RECONSOLIDATES: Switch(
            FAULT, "consolidate-archived without 'force' consolidates consolidated threads again"
        ),
        BATCH_LOG_DISAGREES: Switch(
            FAULT, "consolidate-archived answers the right counts but logs one more consolidated thread"
        ),
        TEND_GARDEN_500: Switch(FAULT, "POST /api/memory/tend-garden answers 500 {'detail': ...}"),
        PREFERENCES_NOT_PERSISTED: Switch(
            FAULT, "preferences are extracted but never written (no save lines)"
        ),
        PREFERENCES_NO_DEDUP: Switch(
            FAULT, "each save of a preference adds a new document (id not deterministic)"
        ),
        PREFERENCES_WRONG_USER: Switch(
            FAULT, "preferences are saved under the user 'default' instead of the caller"
        ),
        SEARCH_LEAKS: Switch(
            FAULT, "GET /api/memory/search returns every user's messages (as the public code does)"
        ),
        MEMORY_FORGETS: Switch(
            FAULT, "consolidated concepts are stored and logged, but the concept search never finds them"
        ),
        ARCHIVE_SLOW: Switch(FAULT, "PATCH archived=true answers only after VALUE ms", 800, "ms"),
        QUEUE_SLOW: Switch(FAULT, "each queued consolidation waits VALUE s before it starts", 6, "s"),
        API_HEALTH_503: Switch(FAULT, "GET /api/health answers 503"),
        HEALTHZ_NOT_READY: Switch(
            FAULT, "GET /healthz and /ready stay 503 'starting' (vector store never ready)"
        ),
        DEV_BYPASS_ACCEPTED: Switch(
            FAULT, "the dev bypass is honoured even when AUTH_DEV_BYPASS=0 forbids it"
        ),
        CONSOLIDATION_FAILS_SOME: Switch(
            FAULT,
            "every round(1/VALUE)-th queued consolidation fails: 'Erreur consolidation thread' ERROR, "
            "'consolidated: 0 new concepts', 'Task consolidate_thread failed' ERROR; consolidated_at null",
            0.05,
            "share",
        ),
        MEMORY_CREEP: Switch(
            FAULT, "after start-up the process grows by VALUE MB of touched memory (~200 MB/s)", 1800, "MB"
        ),
        CPU_BURN: Switch(
            FAULT,
            "after start-up child processes keep VALUE CPUs busy (the service itself keeps answering)",
            1.6,
            "CPUs",
        ),
        SLOW_READS: Switch(FAULT, "every GET answers VALUE ms late (writes are not delayed)", 300, "ms"),
        SERVER_ERRORS: Switch(
            FAULT,
            "a VALUE share of the /api/ requests (health excepted) answers 500, one every round(1/VALUE)",
            0.05,
            "",
        ),
        LATENCY_FACTOR: Switch(
            FAULT,
            "every answer takes VALUE times as long as the service took to make it (a slower release)",
            2,
            "x",
        ),
        NEIGHBOURS_FAIL: Switch(
            FAULT,
            "users named 'neighbour-*' only: every 3rd consolidation fails ('Task consolidate_thread "
            "failed'), every 2nd preference save fails ('Vectorisation préférences impossible')",
        ),
        NEIGHBOURS_SPARED: Switch(
            FAULT,
            "the other faults spare users named 'neighbour-*': only the other users' requests fail",
        ),
        SHUTDOWN_DROPS_QUEUE: Switch(
            FAULT,
            "on SIGTERM the process exits at once: consolidations queued or running in memory are lost, "
            "and no line says so (as a container killed when traffic moves away or it scales in)",
        ),
        ARCHIVED_BOOL: Switch(VARIANT, "'archived' is a JSON boolean instead of 0/1"),
        HARD_DELETE: Switch(VARIANT, "DELETE /api/threads/{id} removes the thread: 404 afterwards"),
        HEALTH_OK: Switch(VARIANT, "GET /health answers {'status': 'ok'} (the runbook's expectation)"),
        PREFERENCES_IN_STATS: Switch(VARIANT, "GET /api/memory/user/stats counts the persisted preferences"),
        JSON_LOGS: Switch(
            VARIANT, "every log line is one JSON object on stdout (Cloud Run structured logging)"
        ),
        SLOW_START: Switch(
            VARIANT, "the process listens only VALUE s after it starts (a slow cold start)", 4, "s"
        ),
        LLM_LATENCY: Switch(
            VARIANT,
            "each consolidation waits VALUE s for the LLM's answer, as the public service's call does "
            "(work after the response: it needs CPU outside requests)",
            2,
            "s",
        ),
        TRANSIENT_503: Switch(
            VARIANT, "one request in VALUE answers 503 before it is processed", 20, "requests"
        ),
        SHUTDOWN_DRAINS: Switch(
            VARIANT,
            "on SIGTERM the queue finishes what it holds before the process exits, within Cloud Run's "
            "10 s grace period ('Draining N queued tasks' line)",
        ),
    }
)

# Name → one-line description, for ``--list-faults`` and error messages.
REGISTRY: Mapping[str, str] = MappingProxyType({name: s.description for name, s in SWITCHES.items()})


class UnknownFaultError(ValueError):
    """A switch name that is not in the registry, or a value it cannot take."""

    def __init__(self, names: Iterable[str], problem: str = "unknown fault(s)") -> None:
        self.names = sorted(set(names))
        unknown = ", ".join(self.names)
        known = ", ".join(sorted(REGISTRY))
        super().__init__(f"{problem}: {unknown} (known: {known})")


def split_names(value: str | None) -> list[str]:
    """Names from a comma-separated list such as ``$EMERGENCE_FAULTS`` (blanks ignored)."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def _parse(item: str) -> tuple[str, float | None]:
    name, sep, raw = item.partition("=")
    name = name.strip()
    switch = SWITCHES.get(name)
    if switch is None:
        raise UnknownFaultError([name])
    if not sep:
        return name, switch.default
    if switch.default is None:
        raise UnknownFaultError([item], "switch takes no value")
    try:
        value = float(raw)
    except ValueError:
        raise UnknownFaultError([item], "switch value must be a number") from None
    if value < 0:
        raise UnknownFaultError([item], "switch value must not be negative")
    return name, value


@dataclass(frozen=True)
class FaultSet:
    """The switches on for this process, with their parameters."""

    active: frozenset[str] = frozenset()
    values: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> FaultSet:
        items = list(names)
        unknown = [item.partition("=")[0].strip() for item in items]
        unknown = [name for name in unknown if name not in SWITCHES]
        if unknown:
            raise UnknownFaultError(unknown)
        values: dict[str, float] = {}
        for item in items:
            name, value = _parse(item)
            if value is not None:
                values[name] = value  # the last one given wins (flags come after the variable)
            else:
                values.setdefault(name, 0.0)
        return cls(frozenset(values), MappingProxyType(values))

    def on(self, name: str) -> bool:
        if name not in SWITCHES:
            raise KeyError(f"fault {name!r} is not in faults.SWITCHES")
        return name in self.active

    def bites(self, name: str, user_id: str) -> bool:
        """Whether fault ``name`` hits this user's request (``neighbours-spared`` spares the neighbours)."""
        return self.on(name) and not (self.on(NEIGHBOURS_SPARED) and is_neighbour(user_id))

    def value(self, name: str) -> float:
        """The parameter of an active parameterised switch (its default when given without one)."""
        if not self.on(name):
            raise KeyError(f"fault {name!r} is not on")
        return self.values[name]

    def describe(self) -> str:
        parts = []
        for name in sorted(self.active):
            default = SWITCHES[name].default
            parts.append(name if default is None else f"{name}={self.values[name]:g}")
        return ", ".join(parts) or "none"


def is_neighbour(user_id: str) -> bool:
    return user_id.startswith(NEIGHBOUR_PREFIX)


def listing() -> str:
    """What ``--list-faults`` prints: faults, then correct variants, one per line."""
    lines = []
    for kind, title in ((FAULT, "Faults"), (VARIANT, "Correct variants")):
        lines.append(f"{title}:")
        for name, switch in sorted(SWITCHES.items()):
            if switch.kind != kind:
                continue
            syntax = name if switch.default is None else f"{name}[=VALUE]"
            default = "" if switch.default is None else f" (default {switch.default:g} {switch.unit})"
            lines.append(f"  {syntax}: {switch.description}{default}")
    return "\n".join(lines)
