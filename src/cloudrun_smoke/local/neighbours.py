"""Neighbours: other users' traffic *during* the smoke run itself, at a steady rate.

Unlike the background traffic (:mod:`cloudrun_smoke.local.traffic`), which fills a window before the
run, neighbours run beside it, so the run's own logs are interleaved with other users' lines as in
production.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from cloudrun_smoke.local.traffic import (
    PREFERENCES,
    PROJECTS,
    REQUEST_TIMEOUT,
    USER_AGENT,
    TrafficError,
    dev_bypass_headers,
)

NEIGHBOUR_USERS = 3
NEIGHBOUR_WORKERS = 4  # cycles overlap: a slow answer does not lower the rate


@dataclass(frozen=True)
class NeighbourSummary:
    rate: float
    cycles: int
    archived: int
    by_status: dict[int, int]
    transport_errors: int
    elapsed: float
    user_ids: tuple[str, ...]

    def describe(self) -> str:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(self.by_status.items()))
        return (
            f"neighbours: {len(self.user_ids)} other users archived {self.archived} threads in "
            f"{self.elapsed:.1f} s (asked {self.rate:g}/s; {statuses or 'no answers'}; "
            f"{self.transport_errors} transport errors)"
        )


class Neighbours:
    """Other users of the service *during* the smoke run, so that its logs look like production's.

    ``rate`` times a second a neighbour (``neighbour-<n>-<random>``, dev bypass) creates a thread whose
    message states a preference, and archives it: the service consolidates it and saves the preference,
    logging the same forms as for the run's own threads, several of which name no thread and no user
    (``N préférences/intentions vectorisées.``, and under the reference's ``neighbours-fail`` fault
    ``Task consolidate_thread failed: ...`` and ``Vectorisation préférences impossible: ...``). They are
    real requests, so the lines come from the service's own code paths, at the service's own pace.
    """

    def __init__(
        self,
        service_url: str,
        rate: float,
        *,
        users: int = NEIGHBOUR_USERS,
        headers_for: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        if rate <= 0 or users < 1:
            raise TrafficError(f"neighbours need a rate > 0 and users >= 1 (got {rate:g}, {users})")
        from emergence_reference.faults import NEIGHBOUR_PREFIX

        self.rate = rate
        tag = secrets.token_hex(3)
        self.user_ids = tuple(f"{NEIGHBOUR_PREFIX}{n}-{tag}" for n in range(1, users + 1))
        header_source = headers_for or dev_bypass_headers
        self._clients = [
            httpx.Client(
                base_url=service_url.rstrip("/"),
                headers={**header_source(u), "User-Agent": USER_AGENT},
                timeout=REQUEST_TIMEOUT,
                trust_env=False,
            )
            for u in self.user_ids
        ]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._slot = 0
        self._cycles = 0
        self._archived = 0
        self._by_status: Counter[int] = Counter()
        self._transport_errors = 0
        self._rng = random.Random(secrets.randbits(32))
        self._workers: list[threading.Thread] = []
        self._started = 0.0
        self._stopped: float | None = None

    def __enter__(self) -> Neighbours:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Neighbours:
        self._started = time.monotonic()
        self._workers = [
            threading.Thread(target=self._work, name=f"neighbour-{i}", daemon=True)
            for i in range(NEIGHBOUR_WORKERS)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> NeighbourSummary:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=REQUEST_TIMEOUT + 1)
        if self._stopped is None:
            self._stopped = time.monotonic()
            for client in self._clients:
                client.close()
        return self.summary()

    def summary(self) -> NeighbourSummary:
        with self._lock:
            end = self._stopped or time.monotonic()
            return NeighbourSummary(
                rate=self.rate,
                cycles=self._cycles,
                archived=self._archived,
                by_status=dict(sorted(self._by_status.items())),
                transport_errors=self._transport_errors,
                elapsed=end - self._started if self._started else 0.0,
                user_ids=self.user_ids,
            )

    def _next(self) -> tuple[float, int, str, str]:
        """The next cycle's start (on the schedule: slot / rate after the start), client and words."""
        with self._lock:
            slot = self._slot
            self._slot += 1
            return (
                self._started + slot / self.rate,
                slot % len(self._clients),
                self._rng.choice(PROJECTS),
                self._rng.choice(PREFERENCES),
            )

    def _work(self) -> None:
        while not self._stop.is_set():
            due, index, project, preference = self._next()
            # The schedule, not a synchronisation: the wait ends at once when the run stops.
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self._cycle(self._clients[index], project, preference)

    def _call(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError:
            with self._lock:
                self._transport_errors += 1
            return None
        with self._lock:
            self._by_status[response.status_code] += 1
        return response

    def _cycle(self, client: httpx.Client, project: str, preference: str) -> None:
        with self._lock:
            self._cycles += 1
        created = self._call(
            client, "POST", "/api/threads/", json={"type": "chat", "title": f"{project} notes"}
        )
        if created is None or created.status_code != 201:
            return
        try:
            thread_id = created.json().get("id")
        except (ValueError, AttributeError):
            return
        if not isinstance(thread_id, str):
            return
        message = {"role": "user", "content": f"Projet {project}. {preference}"}
        self._call(client, "POST", f"/api/threads/{thread_id}/messages", json=message)
        archived = self._call(client, "PATCH", f"/api/threads/{thread_id}", json={"archived": True})
        if archived is not None and archived.status_code == 200:
            with self._lock:
                self._archived += 1
