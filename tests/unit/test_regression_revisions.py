"""Which revision is the baseline: another one serving beside the candidate (concurrent), else the one
created just before it (sequential, over a window of the same length before the deploy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloudrun_smoke.gcp.traffic import TrafficShare
from cloudrun_smoke.regression.revisions import NoBaseline, Revision, pair

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OLD = Revision("svc-00001-aaa", NOW - timedelta(days=3))
PREVIOUS = Revision("svc-00002-bbb", NOW - timedelta(days=1))
CANDIDATE = Revision("svc-00003-ccc", NOW - timedelta(minutes=30))
REVISIONS = [OLD, PREVIOUS, CANDIDATE]


def test_a_canary_split_is_compared_concurrently_with_the_revision_serving_the_rest() -> None:
    traffic = [TrafficShare(PREVIOUS.name, 90), TrafficShare(CANDIDATE.name, 10, tag="candidate")]
    pairing = pair(CANDIDATE, traffic, REVISIONS, NOW, timedelta(hours=24))
    assert (pairing.mode, pairing.baseline) == ("concurrent", PREVIOUS.name)
    assert pairing.candidate_span == pairing.baseline_span
    assert pairing.candidate_span.start == CANDIDATE.created and pairing.candidate_span.end == NOW
    assert "serves 90 % of the traffic beside it" in pairing.describe()


def test_the_largest_other_share_is_the_baseline() -> None:
    traffic = [TrafficShare(OLD.name, 20), TrafficShare(PREVIOUS.name, 70), TrafficShare(CANDIDATE.name, 10)]
    pairing = pair(CANDIDATE, traffic, REVISIONS, NOW, timedelta(hours=24))
    assert pairing.baseline == PREVIOUS.name and "(of 2 other revisions serving)" in pairing.why


def test_alone_in_serving_it_is_compared_with_the_revision_before_it_over_as_long_a_window() -> None:
    pairing = pair(
        CANDIDATE, [TrafficShare(CANDIDATE.name, 100, latest=True)], REVISIONS, NOW, timedelta(hours=24)
    )
    assert (pairing.mode, pairing.baseline) == ("sequential", PREVIOUS.name)
    assert pairing.baseline_span.end == CANDIDATE.created
    assert pairing.baseline_span.end - pairing.baseline_span.start == timedelta(minutes=30)
    assert "sequential" in pairing.describe() and "created just before" in pairing.describe()


def test_the_window_is_capped() -> None:
    pairing = pair(PREVIOUS, [TrafficShare(PREVIOUS.name, 100)], REVISIONS, NOW, timedelta(hours=2))
    assert pairing.candidate_span.start == NOW - timedelta(hours=2)
    assert pairing.baseline_span == type(pairing.baseline_span)(
        PREVIOUS.created - timedelta(hours=2), PREVIOUS.created
    )


def test_the_first_revision_has_nothing_to_be_compared_with() -> None:
    with pytest.raises(NoBaseline, match="none was created before svc-00001-aaa"):
        pair(OLD, [TrafficShare(OLD.name, 100)], REVISIONS, NOW, timedelta(hours=24))


def test_a_revision_that_never_became_ready_is_no_baseline() -> None:
    failed = Revision("svc-00003-fff", NOW - timedelta(hours=2), ready=False)
    later = Revision("svc-00004-ddd", NOW - timedelta(minutes=30))
    pairing = pair(
        later, [TrafficShare(later.name, 100)], [OLD, PREVIOUS, failed, later], NOW, timedelta(hours=24)
    )
    assert pairing.baseline == PREVIOUS.name, pairing.describe()
    with pytest.raises(NoBaseline, match="that became Ready"):
        pair(later, [TrafficShare(later.name, 100)], [failed, later], NOW, timedelta(hours=24))
