"""Runbook P1.2 — preferences: extracted from an archived conversation, persisted, not duplicated.

The persistence line comes in three forms; two name the user (and thread), one names neither and is
attributed by time to the run's own consolidation.
"""

from __future__ import annotations

import pytest

from cloudrun_smoke import contract
from cloudrun_smoke.config import Environment
from cloudrun_smoke.waiting import WaitTimeout, wait_until
from runbook import PreferenceRun

pytestmark = pytest.mark.writes


def test_tend_garden_answers(preference_run: PreferenceRun) -> None:
    body = contract.tend_garden(preference_run.user.client, preference_run.garden_body)
    status = body.get("status")
    assert status in (None, "success", "ok"), f"POST /api/memory/tend-garden: status {status!r}: {body!r}"


def test_preferences_are_persisted(preference_run: PreferenceRun) -> None:
    """A persistence line naming the run's user or thread, or (for the form that names neither) inside
    the run's own consolidation window: attributed by time."""
    run = preference_run
    run.enqueued.result()
    run.consolidated.result()
    saved = run.saved.result()
    how = "by its user/thread" if {"user_id", "thread_id"} & set(saved.fields) else "by time"
    assert int(saved.fields.get("count", "0")) >= 1, (
        f"zero preferences saved ({how}):\n    {saved.line.short()}"
    )


def test_preferences_are_visible_and_not_duplicated(
    preference_run: PreferenceRun, smoke_env: Environment
) -> None:
    if not smoke_env.checks.preferences_in_stats:
        pytest.skip(
            f"[env.{smoke_env.name}.checks] preferences_in_stats = false: this service does not count "
            "persisted preferences in /api/memory/user/stats (the public code reads another collection)"
        )
    run = preference_run
    saved = run.saved.result()
    client = run.user.client

    def total() -> int | None:
        value = contract.user_stats(client)["preferences"].get("total")
        return value if isinstance(value, int) and value > 0 else None

    timeout = min(smoke_env.log_deadline, 15.0)
    try:
        before: int | None = wait_until(total, timeout=timeout, what="preferences.total > 0")
    except WaitTimeout:
        before = None
    if before is None:
        last = contract.user_stats(client)["preferences"]
        pytest.fail(
            f"the service logged the preferences as saved ({saved.line.short()}) but "
            f"GET /api/memory/user/stats for user {run.user.user_id} still shows preferences "
            f"{last!r} after {timeout:.0f} s: they were saved under another user or to a collection "
            "stats do not read (if this service never counts them there, set "
            f"[env.{smoke_env.name}.checks] preferences_in_stats = false)",
            pytrace=False,
        )
    contract.tend_garden(client, {"thread_id": run.thread_id})  # saves the same preferences again
    after = contract.user_stats(client)["preferences"]["total"]
    assert after == before, (
        f"saving the same preferences again changed preferences.total from {before} to {after}: "
        "de-duplication (same user + same text -> one document) does not hold"
    )
