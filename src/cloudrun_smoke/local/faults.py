"""Fault switches of the local stack: one name per way a deploy or Cloud Logging misbehaves.

Stack faults carry the ``stack:`` prefix; any other name is the service's own fault and reaches the
revision in ``EMERGENCE_FAULTS`` (the service validates it). One namespace on the command line, no
ambiguity: ``--fault stack:logging-429 --fault archive-no-enqueue``. Kept free of imports from the
rest of the stack so that ``config.py`` can validate names without starting anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

PREFIX = "stack:"
SERVICE_FAULTS_ENV = "EMERGENCE_FAULTS"

REVISION_NOT_READY = "stack:revision-not-ready"
LATEST_REVISION_FAILED = "stack:latest-revision-failed"
TRAFFIC_SPLIT = "stack:traffic-split"
UNEXPECTED_IMAGE = "stack:unexpected-image"
MISSING_ENV = "stack:missing-env"
WRONG_RESOURCES = "stack:wrong-resources"
LOGGING_429 = "stack:logging-429"
SLOW_INGESTION = "stack:slow-ingestion"
HEAVY_JITTER = "stack:heavy-jitter"
FLAKY_LOGGING = "stack:flaky-logging"
SHORT_PAGES = "stack:short-pages"
ERROR_BURST = "stack:5xx-burst"

STACK_FAULTS: Mapping[str, str] = MappingProxyType(
    {
        REVISION_NOT_READY: "the serving revision's Ready condition is False (it still answers requests)",
        LATEST_REVISION_FAILED: "a newer revision was created and failed: latest created ≠ latest ready",
        TRAFFIC_SPLIT: "the latest revision gets 90 % of traffic, the previous one 10 %",
        UNEXPECTED_IMAGE: "the revision reports an image other than the configured one",
        MISSING_ENV: "the first env var of the configuration is not set on the revision (nor in its process)",
        WRONG_RESOURCES: "the revision reports memory and cpu limits other than the configured ones",
        LOGGING_429: "entries:list answers 429 RESOURCE_EXHAUSTED for a while from the first read",
        SLOW_INGESTION: "log entries become visible only after the suite's log deadline",
        HEAVY_JITTER: "several seconds of per-entry ingestion jitter: lines surface out of order",
        FLAKY_LOGGING: "10 % of entries:list calls answer 429 RESOURCE_EXHAUSTED, at random, all along",
        SHORT_PAGES: "entries:list pages hold at most 20 entries, and every search starts with 2 empty "
        "pages that carry a nextPageToken",
        ERROR_BURST: "the instance answers 500 to the last 10 of every 100 requests (bursts, 10 % of 5xx)",
    }
)


def split_faults(names: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(stack faults, service faults); raises ``ValueError`` on an unknown ``stack:`` name."""
    stack: set[str] = set()
    service: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name.startswith(PREFIX):
            if name not in STACK_FAULTS:
                known = ", ".join(sorted(STACK_FAULTS))
                raise ValueError(f"unknown stack fault {name!r} (known: {known})")
            stack.add(name)
        elif name not in service:
            service.append(name)
    return frozenset(stack), tuple(service)
