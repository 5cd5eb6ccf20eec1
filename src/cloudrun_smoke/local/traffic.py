"""Background traffic: other users of the service, so that a window of metrics and logs looks like one.

Window checks judge the service from everything it served over a period (5xx share, latency, queue
time, consolidations, preferences saved), so locally that period must hold realistic traffic from
users other than the smoke user. Each simulated user creates threads, writes to them (some messages
state preferences), archives them (a quarter also renamed), lists, reads and searches, tends its
memory garden once and checks health; then its archived threads are polled until consolidated.

Every answer is counted by status, transport errors included, and nothing stops a user but the
deadline: the traffic survives a burst of 5xx. Answers 429 and 503 (not processed) are retried at
once, at most twice, each attempt counted, as the front end logs each one.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.service import auth

USER_AGENT = "EmergenceWeb/8.0"
REQUEST_TIMEOUT = 10.0
LATE_TIMEOUT = 0.5
RETRIED_STATUSES = (429, 503)
RETRIES = 2
RENAME_EVERY = 4  # one archived thread in four is renamed too
FIRST_POLL_INTERVAL = 0.1
MAX_POLL_INTERVAL = 1.0

_TOPICS = (
    "Peux-tu résumer la migration Kubernetes du cluster de production ?",
    "What is the rollback procedure for the payment gateway?",
    "Explique la différence entre ChromaDB et PostgreSQL pour la mémoire longue.",
    "Draft a checklist for the quarterly security review.",
    "Quelles métriques surveiller après le déploiement de la nouvelle révision ?",
    "Compare Terraform modules with Pulumi stacks for networking.",
    "Organise la rétrospective du sprint autour des incidents de facturation.",
    "Summarise the incident report about the search latency regression.",
)
_ANSWERS = (
    "Voici un résumé structuré, étape par étape, avec les risques principaux.",
    "Here is a checklist covering authentication, logging, backups and alerting.",
    "Les deux options conviennent ; la différence tient surtout à la réplication.",
    "The main trade-off is operational simplicity against flexibility.",
)
# Each states a preference or an intention the service's extractor recognises.
PREFERENCES = (
    "Je préfère utiliser Docker pour le déploiement.",
    "I prefer PostgreSQL over MySQL for the billing service.",
    "Je veux des rapports hebdomadaires sur la latence.",
    "I want the release notes written in Markdown.",
    "J'aime les tests d'intégration avant chaque livraison.",
    "We need a staging environment identical to production.",
)
# Project names: each thread of a user names another one, so each brings the user new concepts.
PROJECTS = (
    "Andromeda", "Apollo", "Artemis", "Aurora", "Borealis", "Cassini", "Galileo", "Gemini",
    "Hermes", "Hubble", "Kepler", "Mercury", "Nimbus", "Orion", "Pegasus", "Phoenix",
    "Pioneer", "Polaris", "Rosetta", "Sirius", "Titan", "Vanguard", "Voyager", "Zephyr",
)  # fmt: skip
_SEARCHES = ("migration", "checklist", "latence", "rollback", "réplication", "incident")


class TrafficError(SmokeError):
    """The service cannot be reached at all: there is no traffic to run."""


@dataclass(frozen=True)
class TrafficSummary:
    """What the simulated users did and saw.

    ``requests`` counts answered requests, every attempt (what the request log holds); requests that
    got no answer are ``transport_errors``. ``threads_created`` includes each user's notes thread,
    which stays active: its tend-garden is what ``preferences_saved`` adds up.
    """

    users: int
    requests: int
    by_status: dict[int, int]
    threads_created: int
    threads_archived: int
    renames: int
    consolidated: int
    unconsolidated_ids: tuple[str, ...]
    preferences_saved: int
    elapsed: float
    transport_errors: int = 0
    user_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(self.by_status.items()))
        lines = [
            f"background traffic: {self.users} users, {self.requests} requests in {self.elapsed:.1f} s "
            f"({statuses or 'none'}; {self.transport_errors} transport errors)",
            f"  threads: {self.threads_created} created, {self.threads_archived} archived, "
            f"{self.renames} renamed, {self.consolidated} consolidated",
            f"  preferences saved (tend-garden): {self.preferences_saved}",
        ]
        if self.unconsolidated_ids:
            lines.append(f"  not consolidated by the deadline: {', '.join(self.unconsolidated_ids)}")
        return "\n".join(lines)


def dev_bypass_headers(user_id: str) -> dict[str, str]:
    """The service's dev bypass for one user, with a session of its own."""
    return auth.dev_bypass_headers(user_id, f"session-{user_id}")


@dataclass
class _Tally:
    by_status: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    created: int = 0
    archived: list[str] = field(default_factory=list)
    renames: int = 0
    consolidated: set[str] = field(default_factory=set)
    preferences_saved: int = 0


class _User:
    """One simulated user: its own client, random choices and tally."""

    def __init__(self, user_id: str, client: httpx.Client, ends_at: float, seed: int) -> None:
        self.user_id = user_id
        self.tally = _Tally()
        self._client = client
        self._ends_at = ends_at
        self._rng = random.Random(seed)
        self._projects = self._rng.sample(PROJECTS, len(PROJECTS))

    def _time_left(self) -> float:
        return self._ends_at - time.monotonic()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One call, retried at once on an answer that says it was not processed; None if none came."""
        response: httpx.Response | None = None
        for _attempt in range(1 + RETRIES):
            # Past the deadline a request still gets a moment, so a hung service cannot hold the run.
            timeout = min(REQUEST_TIMEOUT, max(LATE_TIMEOUT, self._time_left()))
            try:
                response = self._client.request(method, path, timeout=timeout, **kwargs)
            except httpx.TransportError:
                self.tally.transport_errors += 1
                response = None
                continue
            self.tally.by_status[response.status_code] += 1
            if response.status_code not in RETRIED_STATUSES:
                return response
        return response

    def probe(self) -> None:
        """The first request of the run: a service that cannot be reached at all ends it here."""
        try:
            response = self._client.get("/api/health")
        except httpx.UnsupportedProtocol:
            raise TrafficError(f"not a service URL: {self._client.base_url} (http:// or https://)") from None
        except httpx.TransportError as e:
            raise TrafficError(f"cannot reach the service at {self._client.base_url}: {e!r}") from None
        self.tally.by_status[response.status_code] += 1

    def _json(self, response: httpx.Response | None, status: int) -> dict[str, Any] | None:
        if response is None or response.status_code != status:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # -- what a user does ----------------------------------------------------------------------------
    def run(self, threads: int) -> None:
        self.request("GET", "/api/health")
        garden = self._create_thread("Notes")
        if garden is not None:
            self._post(garden, "user", self._rng.choice(PREFERENCES))
        for index in range(threads):
            if self._time_left() <= 0:
                break
            self._one_thread(index)
            if index % 3 == 2:
                self._browse()
        if garden is not None and self._time_left() > 0:
            self._tend_garden(garden)
        self.request("GET", "/healthz")
        self.wait_for_consolidation()

    def _create_thread(self, title: str) -> str | None:
        body = self._json(self.request("POST", "/api/threads/", json={"type": "chat", "title": title}), 201)
        thread_id = body.get("id") if body else None
        if not isinstance(thread_id, str):
            return None
        self.tally.created += 1
        return thread_id

    def _post(self, thread_id: str, role: str, content: str) -> None:
        self.request("POST", f"/api/threads/{thread_id}/messages", json={"role": role, "content": content})

    def _one_thread(self, index: int) -> None:
        rng = self._rng
        topic = rng.choice(_TOPICS)
        project = self._projects[index % len(self._projects)]
        thread_id = self._create_thread(f"{project}: {topic[:40]}")
        if thread_id is None:
            return
        self._post(thread_id, "user", f"Projet {project}. {topic}")
        extra = rng.randint(0, 2)  # 1–3 messages in all
        if extra >= 1:
            self._post(thread_id, "assistant", rng.choice(_ANSWERS))
        if extra == 2:
            self._post(thread_id, "user", rng.choice(PREFERENCES))
        if rng.random() < 0.5:
            self.request("GET", f"/api/threads/{thread_id}")
        if self._json(self.request("PATCH", f"/api/threads/{thread_id}", json={"archived": True}), 200):
            self.tally.archived.append(thread_id)
        if index % RENAME_EVERY == RENAME_EVERY - 1:
            renamed = self.request(
                "PATCH", f"/api/threads/{thread_id}", json={"title": f"{topic[:30]} (done)"}
            )
            if renamed is not None and renamed.status_code == 200:
                self.tally.renames += 1

    def _browse(self) -> None:
        word = self._rng.choice(_SEARCHES)
        self.request("GET", "/api/threads/archived/list", params={"limit": 20})
        self.request("GET", "/api/memory/search", params={"q": word, "limit": 10})
        self.request("GET", "/api/memory/concepts/search", params={"q": word, "limit": 5})

    def _tend_garden(self, thread_id: str) -> None:
        body = self._json(self.request("POST", "/api/memory/tend-garden", json={"thread_id": thread_id}), 200)
        saved = body.get("new_preferences") if body else None
        if isinstance(saved, int):
            self.tally.preferences_saved += saved

    def wait_for_consolidation(self) -> None:
        """Poll each archived thread until its ``consolidated_at`` is set or the deadline passes; the
        interval grows, so a thread that never gets there costs few requests."""
        pending = list(self.tally.archived)
        interval = FIRST_POLL_INTERVAL
        while pending:
            for thread_id in list(pending):
                body = self._json(self.request("GET", f"/api/threads/{thread_id}"), 200)
                thread = body.get("thread") if body else None
                if isinstance(thread, dict) and thread.get("consolidated_at"):
                    pending.remove(thread_id)
                    self.tally.consolidated.add(thread_id)
            left = self._time_left()
            if not pending or left <= 0:
                return
            time.sleep(min(interval, left))  # poll interval: each round re-checks the threads
            interval = min(interval * 2, MAX_POLL_INTERVAL)


def _summary(users: list[_User], elapsed: float) -> TrafficSummary:
    by_status: Counter[int] = Counter()
    archived: list[str] = []
    consolidated: set[str] = set()
    for user in users:
        by_status.update(user.tally.by_status)
        archived += user.tally.archived
        consolidated |= user.tally.consolidated
    return TrafficSummary(
        users=len(users),
        requests=sum(by_status.values()),
        by_status=dict(sorted(by_status.items())),
        threads_created=sum(u.tally.created for u in users),
        threads_archived=len(archived),
        renames=sum(u.tally.renames for u in users),
        consolidated=len(consolidated),
        unconsolidated_ids=tuple(t for t in archived if t not in consolidated),
        preferences_saved=sum(u.tally.preferences_saved for u in users),
        elapsed=elapsed,
        transport_errors=sum(u.tally.transport_errors for u in users),
        user_ids=tuple(u.user_id for u in users),
    )


def run_background_traffic(
    service_url: str,
    *,
    users: int = 6,
    threads_per_user: int = 8,
    deadline: float = 60.0,
    headers_for: Callable[[str], dict[str, str]] | None = None,
) -> TrafficSummary:
    """Run ``users`` simulated users at once against ``service_url`` and return what they saw.

    ``deadline`` bounds the whole run in seconds: no new thread is started after it and waiting for
    consolidations ends there (the threads still unconsolidated are reported). Users are
    ``user-<n>-<random>`` with the dev bypass, unless ``headers_for(user_id)`` gives their headers.
    Raises :class:`TrafficError` when the service cannot be reached at all.
    """
    if users < 1 or threads_per_user < 0 or deadline <= 0:
        raise TrafficError(
            f"users must be >= 1, threads_per_user >= 0 and deadline > 0 "
            f"(got {users}, {threads_per_user}, {deadline:g})"
        )
    started = time.monotonic()
    ends_at = started + deadline
    header_source: Callable[[str], Mapping[str, str]] = headers_for or dev_bypass_headers
    run_tag = secrets.token_hex(3)
    clients: list[httpx.Client] = []
    simulated: list[_User] = []
    for n in range(1, users + 1):
        user_id = f"user-{n}-{run_tag}{secrets.token_hex(2)}"
        client = httpx.Client(
            base_url=service_url.rstrip("/"),
            headers={**header_source(user_id), "User-Agent": USER_AGENT},
            timeout=REQUEST_TIMEOUT,
            trust_env=False,
        )
        clients.append(client)
        simulated.append(_User(user_id, client, ends_at, seed=secrets.randbits(32)))
    try:
        simulated[0].probe()
        with ThreadPoolExecutor(max_workers=users, thread_name_prefix="traffic-user") as pool:
            for future in [pool.submit(user.run, threads_per_user) for user in simulated]:
                future.result()
    finally:
        for client in clients:
            client.close()
    return _summary(simulated, time.monotonic() - started)
