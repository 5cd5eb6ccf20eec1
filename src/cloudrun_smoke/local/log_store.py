"""The Logging emulator's storage: entries kept in timestamp order, each visible only after its own
ingestion delay, as in Cloud Logging where a line can surface after a later-stamped one."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cloudrun_smoke.timeutil import parse_rfc3339


@dataclass(order=True, frozen=True)
class StoredEntry:
    sort_key: tuple[float, str]
    visible_at: float = field(compare=False)
    entry: dict[str, Any] = field(compare=False)

    @property
    def insert_id(self) -> str:
        return self.sort_key[1]


class LogStore:
    """A bounded, thread-safe store; the oldest entries go first when it is full."""

    def __init__(self, max_entries: int = 200_000, clock: Callable[[], float] = time.time) -> None:
        self._entries: list[StoredEntry] = []
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._clock = clock
        self.visible_at_by_insert_id: dict[str, float] = {}

    def add(self, entry: dict[str, Any], visible_at: float) -> None:
        key = (parse_rfc3339(entry["timestamp"]).timestamp(), entry["insertId"])
        with self._lock:
            bisect.insort(self._entries, StoredEntry(key, visible_at, entry))
            self.visible_at_by_insert_id[entry["insertId"]] = visible_at
            if len(self._entries) > self._max_entries:
                dropped = self._entries.pop(0)
                self.visible_at_by_insert_id.pop(dropped.insert_id, None)

    def snapshot(self, as_of: float | None = None) -> list[StoredEntry]:
        """Entries visible at ``as_of`` (default: now), in ascending timestamp order."""
        cutoff = self._clock() if as_of is None else as_of
        with self._lock:
            return [e for e in self._entries if e.visible_at <= cutoff]

    def now(self) -> float:
        return self._clock()

    def __iter__(self) -> Iterator[StoredEntry]:
        with self._lock:
            return iter(list(self._entries))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
