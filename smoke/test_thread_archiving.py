"""Runbook test 1 (P0) — archiving a thread enqueues a consolidation that completes asynchronously.

The service must log, for the run's thread and in this order: the enqueue by the archive hook, the
start of the consolidation, its completion with at least one new concept, and no failure line. The
thread then shows ``consolidated_at``, archiving it again enqueues nothing, and the memory recalls
the conversation.
"""

from __future__ import annotations

import contextlib

import pytest

from cloudrun_smoke import (
    CloudRunScope,
    Environment,
    Figure,
    Figures,
    LogExpectationFailed,
    LogWatcher,
    Target,
    WaitTimeout,
    contract,
    cpu_allocation,
    utcnow,
    wait_until,
)
from runbook import TOPIC, ArchivedThread

pytestmark = pytest.mark.writes


def test_archive_enqueues_a_consolidation_that_completes(
    archived_thread: ArchivedThread,
    smoke_env: Environment,
    smoke_target: Target,
    smoke_logs: LogWatcher,
    request: pytest.FixtureRequest,
) -> None:
    run = archived_thread
    late = ""
    try:
        matches = [run.enqueued.result(), run.consolidating.result(), run.consolidated.result()]
    except LogExpectationFailed as e:
        if run.enqueued.match is None or not (run.consolidating.expired or run.consolidated.expired):
            raise
        late = f"{e}\n{_late_consolidation(run, smoke_env, smoke_target, request)}"
    if late:  # late, not failed: starved of CPU between requests, or a slow or broken queue
        pytest.fail(late, pytrace=False)
    started = matches[1].line.timestamp
    if matches[0].line.timestamp > started:
        # Lines surface out of order: the enqueue read first may be a second one (the re-archive check
        # names that fault); the one that enqueued this consolidation is stamped before it started.
        earlier = smoke_logs.expect_later(
            "archive.enqueued",
            {"thread_id": run.thread_id},
            timeout=smoke_env.log_deadline,
            since=run.enqueued.since,
            accept=lambda m: m.line.timestamp <= started,
            record=False,
        )
        with contextlib.suppress(LogExpectationFailed):
            matches[0] = earlier.result()
    stamps = [m.line.timestamp for m in matches]
    assert stamps == sorted(stamps), "log lines out of order for thread {}:\n{}".format(
        run.thread_id, "\n".join(f"    {m.line.short()}" for m in matches)
    )
    concepts = int(matches[-1].fields["concepts"])
    minimum = smoke_env.checks.min_new_concepts
    assert concepts >= minimum, (
        f"thread {run.thread_id} was consolidated with {concepts} new concepts (expected >= {minimum}): "
        f"the consolidation stored nothing — the service logs 'consolidated: 0' after a failure too\n"
        f"    {matches[-1].line.short()}"
    )


def test_consolidated_thread_shows_consolidated_at(archived_thread: ArchivedThread) -> None:
    run = archived_thread
    run.consolidated.result()
    body = contract.get_thread(run.user.client, run.thread_id)
    thread = body["thread"]
    if "consolidated_at" not in thread:
        pytest.skip("the service does not expose consolidated_at on threads")
    assert thread["consolidated_at"], (
        f"thread {run.thread_id} was consolidated (log line seen) but consolidated_at is "
        f"{thread['consolidated_at']!r}: {thread!r}"
    )


def test_archiving_again_enqueues_nothing(archived_thread: ArchivedThread, smoke_figures: Figures) -> None:
    archived_thread.enqueued.result()
    absence = archived_thread.no_second_enqueue
    try:
        absence.result()
    except LogExpectationFailed as e:
        seen = str(e)
    else:
        return
    finally:
        smoke_figures.record(
            Figure("re-archive watched", absence.window(), " s", note=absence.window_reason())
        )
    pytest.fail(
        f"archiving thread {archived_thread.thread_id} again, already archived, enqueued a second "
        f"consolidation (only the transition to archived may enqueue one):\n{seen}",
        pytrace=False,
    )


def test_memory_recalls_the_archived_conversation(
    archived_thread: ArchivedThread, smoke_env: Environment
) -> None:
    if not smoke_env.checks.expect_recall:
        pytest.skip(f"[env.{smoke_env.name}.checks] expect_recall = false: recall is not expected here")
    run = archived_thread
    done = run.consolidated.result()
    last: list[dict] = []

    def recalled() -> list[dict] | None:
        nonlocal last
        last = contract.search_concepts(run.user.client, TOPIC)
        mine = [r for r in last if run.thread_id in (r.get("thread_ids") or [])]
        return mine or None

    timeout = min(smoke_env.log_deadline, 15.0)
    with contextlib.suppress(WaitTimeout):
        wait_until(
            recalled,
            timeout=timeout,
            what=f"GET /api/memory/concepts/search?q={TOPIC} to list a concept from thread {run.thread_id}",
            interval=1.0,
        )
        return
    shown = "; ".join(f"{r.get('concept_text')!r} from threads {r.get('thread_ids')!r}" for r in last[:5])
    pytest.fail(
        f"the memory does not recall thread {run.thread_id}: its consolidation logged "
        f"{done.fields.get('concepts', '?')} new concepts, but GET /api/memory/concepts/search?q={TOPIC} "
        f"as {run.user.user_id} lists no concept from it after {timeout:.0f} s; it returned "
        f"{len(last)} result(s){': ' + shown if shown else ''}\n    {done.line.short()}",
        pytrace=False,
    )


def _late_consolidation(
    run: ArchivedThread, env: Environment, target: Target, request: pytest.FixtureRequest
) -> str:
    """Starved or broken: the consolidation's progress lines against the revision's request log (one
    entries:list read), and the revision's cpu_idle."""
    progress = [
        (name, expectation.match.line.timestamp)
        for name, expectation in (("enqueued", run.enqueued), ("consolidating", run.consolidating))
        if expectation.match is not None
    ]
    since = min(t for _, t in progress)
    filter_ = CloudRunScope.of(env, target.revision).request_logs_filter(since)
    fix = cpu_allocation.fix(bool(target.cpu_idle), env.service, env.region, env.project)
    try:
        spans = cpu_allocation.read_request_spans(
            request.getfixturevalue("smoke_logging_client"), env.project, filter_
        )
    except Exception as e:  # a diagnosis must not hide the failure it explains
        return f"(could not read the request log to tell a starved instance from a slow queue: {type(e).__name__}: {e}; revision {target.revision} has cpu_idle = {target.cpu_idle})"
    return cpu_allocation.starvation_diagnosis(
        target.cpu_idle, target.revision, progress, spans, now=utcnow(), fix_command=fix
    )
