"""Runbook test 2 (P0) — ``POST /api/memory/consolidate-archived`` consolidates what is due.

Status and schema, counts that add up, at least one thread consolidated when the run made sure one
was due, a second call without ``force`` skipping what the first consolidated, ``limit`` honoured,
and each call's own log line agreeing with its response.
"""

from __future__ import annotations

import pytest

from cloudrun_smoke.logs.expectations import LogExpectationFailed
from cloudrun_smoke.logs.watcher import LogWatcher
from runbook import BatchRun, batch_counts

pytestmark = pytest.mark.writes


def _counts(body: dict) -> str:
    return (
        f"consolidated_count={body['consolidated_count']}, skipped_count={body['skipped_count']}, "
        f"errors={len(body['errors'])}, total_archived={body['total_archived']}"
    )


def test_batch_answers_success_with_counts_that_add_up(batch_run: BatchRun) -> None:
    for label, body in (("first call", batch_run.first), ("second call", batch_run.second)):
        assert body["status"] == "success", (
            f"{label}: status {body['status']!r}, expected 'success': {body!r}"
        )
        total = body["consolidated_count"] + body["skipped_count"] + len(body["errors"])
        assert total == body["total_archived"], (
            f"{label}: consolidated + skipped + errors = {total} but total_archived = "
            f"{body['total_archived']} ({_counts(body)})"
        )


def test_batch_consolidates_the_runs_archived_thread(batch_run: BatchRun) -> None:
    if not batch_run.forced:
        pytest.skip("fixed identity: the batch runs without force, so nothing is known to be due")
    first = batch_run.first
    assert first["consolidated_count"] >= 1, (
        f"the run archived a fresh thread ({batch_run.thread_id}) and called with force=true, but the batch "
        f"consolidated nothing ({_counts(first)}): a failed consolidation is counted as skipped, "
        f"so 'status: success' hides it"
    )
    assert not first["errors"], f"the batch reported errors: {first['errors']!r}"


def test_second_batch_without_force_skips_what_the_first_consolidated(batch_run: BatchRun) -> None:
    first, second = batch_run.first, batch_run.second
    if batch_run.forced:
        assert second["consolidated_count"] == 0, (
            f"the second call (no force) consolidated {second['consolidated_count']} thread(s) again; "
            f"the first (force) had consolidated them all ({_counts(first)} then {_counts(second)})"
        )
    assert second["skipped_count"] >= first["consolidated_count"], (
        f"the second call skipped {second['skipped_count']} thread(s), fewer than the "
        f"{first['consolidated_count']} the first consolidated ({_counts(second)})"
    )


def test_batch_honours_limit(batch_run: BatchRun) -> None:
    if batch_run.limited is None:
        pytest.skip("fixed identity: no forced batch with limit=1 (it would re-consolidate the account)")
    body = batch_run.limited
    processed = body["consolidated_count"] + body["skipped_count"] + len(body["errors"])
    assert processed <= 1, f"limit=1 but the batch processed {processed} threads ({_counts(body)})"


def _figures(counts: dict[str, str]) -> str:
    return f"{counts['consolidated']} consolidated, {counts['skipped']} skipped, {counts['errors']} errors"


def test_batch_log_line_agrees_with_the_response(batch_run: BatchRun, smoke_logs: LogWatcher) -> None:
    """Each call of the run has a ``Batch completed`` line of its own with the figures it answered.

    The line names no user, so a line is attributed by its figures, one line per call: with three calls,
    a line that is off by one can carry the figures another call answered.
    """
    missing = []
    for call in batch_run.calls:
        try:
            call.line.result()
        except LogExpectationFailed:
            missing.append(call)
    if not missing:
        return
    seen = smoke_logs.find("batch.completed", since=batch_run.since)
    answered = [(call, batch_counts(call.response)) for call in batch_run.calls]
    said = [{k: m.fields[k] for k in ("consolidated", "skipped", "errors")} for m in seen]
    width = max(len(call.label) for call in batch_run.calls)
    if len(seen) == len(answered):  # as many lines as calls: each line is its call's, in order
        wrong = [(c, a, s) for (c, a), s in zip(answered, said, strict=True) if a != s]
        if wrong:
            call, counts, line = wrong[0]
            table = "\n".join(
                f"    {c.label:<{width}}  answered {_figures(a)}; its line says {_figures(s)}"
                + ("" if a == s else "  <- disagrees")
                for (c, a), s in zip(answered, said, strict=True)
            )
            pytest.fail(
                f"the batch's log line disagrees with its response: the {call.label} answered "
                f"{_figures(counts)}, but its 'Batch completed' line says {_figures(line)}\n"
                f"  the run's calls and their lines, in order:\n{table}",
                pytrace=False,
            )
    call = missing[0]
    calls = "\n".join(f"    {c.label:<{width}}  answered {_figures(a)}" for c, a in answered)
    lines = "\n".join(f"    {m.line.short()}" for m in seen) or "    (none)"
    pytest.fail(
        f"the batch's log line disagrees with its response: no 'Batch completed' line of its own says "
        f"what the {call.label} answered ({_figures(batch_counts(call.response))}) after waiting "
        f"{call.line.timeout:.1f} s\n  the run's calls, in order:\n{calls}\n"
        f"  'Batch completed' lines since the first call, in order:\n{lines}\n"
        f"{call.line.error}",
        pytrace=False,
    )
