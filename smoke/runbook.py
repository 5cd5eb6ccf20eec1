"""The runbook's scenarios: what the suite does to the service. The checks in this folder judge it.

Every scenario acts at once and registers the log lines it expects; the harness starts all the
scenarios the selected checks need before the first check runs, so their waits overlap.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cloudrun_smoke import (
    Absence,
    Environment,
    Expectation,
    LogMatch,
    LogWatcher,
    MeasuredWindow,
    SmokeRun,
    SmokeUser,
    Timing,
    contract,
    scenario,
    utcnow,
)

# What the runbook's test conversation talks about: concepts a consolidation can extract and find again.
TOPIC = "Docker"
MESSAGE = f"Je préfère utiliser {TOPIC} pour le déploiement des services conteneurisés en production."
PREFERENCE = "I prefer dark mode and I want concise answers in French."


def conversation(topic_sentence: str = MESSAGE) -> str:
    """The run's message with a word of its own: under a fixed identity (login, bearer) every thread of
    every run belongs to one user, and only a concept the user never had counts as new."""
    word = "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(10))
    return f"{topic_sentence} Projet {word.capitalize()}."


def _archive_with_timing(user: SmokeUser, thread_id: str) -> tuple[dict[str, Any], Timing]:
    thread = contract.archive_thread(user.client, thread_id)
    return thread, user.client.timings[-1]


def _since(moment: datetime) -> datetime:
    """Lines are stamped by the service's clock: allow for a few seconds of skew with ours."""
    return moment - timedelta(seconds=5)


@dataclass
class ArchivedThread:
    """Runbook test 1 (P0): a thread with one message, archived once, then archived again."""

    user: SmokeUser
    thread_id: str
    archived: dict[str, Any]
    enqueued: Expectation
    consolidating: Expectation
    consolidated: Expectation
    no_second_enqueue: Absence


def _enough_or_last(
    watcher: LogWatcher, where: dict[str, str], since: datetime, minimum: int
) -> Callable[[LogMatch], bool]:
    """The consolidated line to judge: one with enough new concepts, or else, once every consolidation
    of the thread has ended without enough, the first. A thread enqueued twice by mistake is
    consolidated twice and the second finds nothing new: its '0 new concepts' may come first, and it
    says nothing of the consolidation the archive enqueued (the re-archive check names that fault)."""

    def enough(match: LogMatch) -> bool:
        return "concepts" not in match.fields or int(match.fields["concepts"]) >= minimum

    def accept(match: LogMatch) -> bool:
        if enough(match):
            return True
        started = watcher.find("queue.consolidating", where, since)
        ended = watcher.find("queue.consolidated", where, since)
        # Lines surface out of order: another consolidation's lines may not have surfaced yet.
        all_seen = watcher.surfaced_by(match.line.timestamp)
        return all_seen and len(started) <= len(ended) and not any(enough(m) for m in ended)

    return accept


@scenario
def archived_thread(
    smoke_users: Callable[[str], SmokeUser],
    smoke_run: SmokeRun,
    smoke_env: Environment,
    smoke_logs: LogWatcher,
) -> ArchivedThread:
    user = smoke_users("archive")
    thread_id = user.new_thread(f"cloudrun-smoke {smoke_run.run_id} archive", conversation())
    started = utcnow()
    archived, _ = _archive_with_timing(user, thread_id)
    where = {"thread_id": thread_id}
    deadline = smoke_env.log_deadline
    since = _since(started)
    enough = _enough_or_last(smoke_logs, where, since, smoke_env.checks.min_new_concepts)
    expectations = [
        smoke_logs.expect_later(name, where, timeout=deadline, since=since, accept=accept)
        for name, accept in (
            ("archive.enqueued", None),
            ("queue.consolidating", None),
            ("queue.consolidated", enough),
        )
    ]
    contract.archive_thread(user.client, thread_id)  # a second time: must enqueue nothing new
    # A second enqueue would be logged by this request: watched until such a line would have surfaced,
    # the largest ingestion lag the run measures plus a margin (at most log_deadline).
    no_second = smoke_logs.expect_absent(
        "archive.enqueued", where, window=MeasuredWindow(cap=deadline), since=since, allowed=1
    )
    return ArchivedThread(user, thread_id, archived, *expectations, no_second)


def batch_counts(body: dict[str, Any]) -> dict[str, str]:
    """A batch response's figures, as its ``batch.completed`` line states them."""
    return {
        "consolidated": str(body["consolidated_count"]),
        "skipped": str(body["skipped_count"]),
        "errors": str(len(body["errors"])),
    }


@dataclass
class BatchCall:
    """One call of the batch: what it answered, and its own log line that must say the same."""

    label: str
    response: dict[str, Any]
    line: Expectation


@dataclass
class BatchRun:
    """Runbook test 2 (P0): ``consolidate-archived`` on the run's own archived thread."""

    user: SmokeUser
    thread_id: str
    forced: bool
    first: dict[str, Any]
    second: dict[str, Any]
    limited: dict[str, Any] | None
    calls: list[BatchCall]
    since: datetime


def _line_of_its_own(calls: list[BatchCall], index: int) -> Callable[[LogMatch], bool]:
    """A batch line names no user: each call needs a line that no other call of the run took, or one
    line could vouch for two calls with the same figures (three calls, one wrong line, still a pass)."""

    def accept(match: LogMatch) -> bool:
        return all(
            call.line.match is None or call.line.match.line.insert_id != match.line.insert_id
            for i, call in enumerate(calls)
            if i != index
        )

    return accept


@scenario
def batch_run(
    smoke_users: Callable[[str], SmokeUser],
    smoke_run: SmokeRun,
    smoke_env: Environment,
    smoke_logs: LogWatcher,
) -> BatchRun:
    user = smoke_users("batch")
    # Two archived threads, so that limit=1 has something to leave out.
    thread_id, second_id = (
        user.new_thread(f"cloudrun-smoke {smoke_run.run_id} batch {i}", conversation()) for i in (1, 2)
    )
    contract.archive_thread(user.client, thread_id)
    contract.archive_thread(user.client, second_id)
    started = utcnow()
    since = _since(started)
    calls: list[BatchCall] = []

    def call(label: str, **body: Any) -> dict[str, Any]:
        response = contract.consolidate_archived(user.client, **body)
        line = smoke_logs.expect_later(
            "batch.completed",
            batch_counts(response),
            timeout=smoke_env.log_deadline,
            since=since,
            accept=_line_of_its_own(calls, len(calls)),
        )
        calls.append(BatchCall(label, response, line))
        return response

    # force re-consolidates every archived thread of the user: only for a user that exists for this run.
    forced = smoke_env.user_is_chosen_by_suite
    first = call(f"first call ({'force=true' if forced else 'no force'})", limit=100, force=forced)
    second = call("second call (no force)", limit=100)
    limited = call("limit=1 call (force=true)", limit=1, force=True) if forced else None
    return BatchRun(user, thread_id, forced, first, second, limited, calls, since)


@dataclass
class PreferenceRun:
    """Runbook P1.2: a preference stated in an archived conversation is extracted and persisted."""

    user: SmokeUser
    thread_id: str
    enqueued: Expectation
    consolidated: Expectation
    saved: Expectation
    garden_body: dict[str, Any]
    garden: dict[str, Any] = field(default_factory=dict)


def _garden_body(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: _garden_body(v, values) for k, v in template.items()}
    return template


def _ours(match: LogMatch, user_id: str, thread_id: str, start: Expectation, end: Expectation) -> bool:
    """Whether a preference line belongs to the run: by the user or thread it names, or, for the form
    that names neither, by time, inside the run's own consolidation window (enqueued → consolidated)."""
    fields = match.fields
    if "user_id" in fields or "thread_id" in fields:
        return fields.get("user_id", user_id) == user_id and fields.get("thread_id", thread_id) == thread_id
    if start.match is None or end.match is None:
        return False  # the window is not known yet
    return start.match.line.timestamp <= match.line.timestamp <= end.match.line.timestamp


@scenario
def preference_run(
    smoke_users: Callable[[str], SmokeUser],
    smoke_run: SmokeRun,
    smoke_env: Environment,
    smoke_logs: LogWatcher,
) -> PreferenceRun:
    user = smoke_users("prefs")
    thread_id = user.new_thread(f"cloudrun-smoke {smoke_run.run_id} preferences", PREFERENCE)
    started = utcnow()
    contract.archive_thread(user.client, thread_id)
    where = {"thread_id": thread_id}
    timeout = smoke_env.log_deadline
    enqueued = smoke_logs.expect_later("archive.enqueued", where, timeout=timeout, since=_since(started))
    consolidated = smoke_logs.expect_later(
        "queue.consolidated", where, timeout=timeout, since=_since(started)
    )
    saved = smoke_logs.expect_later(
        "preferences.saved",
        {},
        timeout=timeout,
        since=_since(started),
        accept=lambda m: _ours(m, user.user_id, thread_id, enqueued, consolidated),
    )
    body = _garden_body(
        dict(smoke_env.checks.tend_garden_body),
        {"thread_id": thread_id, "user_id": user.user_id, "session_id": smoke_run.session_id},
    )
    return PreferenceRun(user, thread_id, enqueued, consolidated, saved, body)


@dataclass
class ArchiveSamples:
    """Several archives, for the SLOs: archive latency (client side) and queue time (from log stamps)."""

    threads: list[str]
    archive_timings: list[Timing]
    enqueued: list[Expectation]
    consolidated: list[Expectation]


@scenario
def archive_samples(
    smoke_users: Callable[[str], SmokeUser],
    smoke_run: SmokeRun,
    smoke_env: Environment,
    smoke_logs: LogWatcher,
) -> ArchiveSamples:
    user = smoke_users("slo")
    threads = [
        user.new_thread(f"cloudrun-smoke {smoke_run.run_id} slo {i}", conversation())
        for i in range(smoke_env.slo.archive_samples)
    ]
    started = utcnow()
    timings = [_archive_with_timing(user, thread_id)[1] for thread_id in threads]
    timeout = smoke_env.log_deadline
    enqueued = [
        smoke_logs.expect_later("archive.enqueued", {"thread_id": t}, timeout=timeout, since=_since(started))
        for t in threads
    ]
    consolidated = [
        smoke_logs.expect_later(
            "queue.consolidated", {"thread_id": t}, timeout=timeout, since=_since(started)
        )
        for t in threads
    ]
    return ArchiveSamples(threads, timings, enqueued, consolidated)
