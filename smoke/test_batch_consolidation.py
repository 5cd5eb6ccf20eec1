"""Runbook test 2 (P0) — ``POST /api/memory/consolidate-archived`` consolidates what is due.

Status and schema, counts that add up, at least one thread consolidated when the run made sure one
was due, a second call without ``force`` skipping what the first consolidated, ``limit`` honoured,
and the batch's own log line agreeing with its response.
"""

from __future__ import annotations

import pytest

from runbook import BatchRun

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


def test_batch_log_line_agrees_with_the_response(batch_run: BatchRun) -> None:
    batch_run.completed.result()
