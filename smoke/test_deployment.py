"""Runbook 4.1 — the service is deployed: the new revision is Ready and serves 100 % of traffic."""

from __future__ import annotations

from cloudrun_smoke.discovery import Target


def test_revision_under_test_is_ready(smoke_target: Target) -> None:
    t = smoke_target
    assert t.revision, (
        f"no revision serves traffic for {t.service_name}; traffic: {t.describe_traffic() or 'none'}"
    )
    assert t.latest_created_revision == t.latest_ready_revision, (
        f"failed deploy: the latest created revision {t.latest_created_revision} is not ready "
        f"({t.service_ready_message or 'no reason given'}); the latest ready one is "
        f"{t.latest_ready_revision or 'none'} and traffic is {t.describe_traffic()}"
    )
    assert t.revision_ready, (
        f"revision {t.revision} is not Ready: {t.revision_ready_message or 'no reason given'}"
    )


def test_revision_under_test_serves_all_traffic(smoke_target: Target) -> None:
    t = smoke_target
    percent = t.percent_for(t.revision)
    assert percent == 100, (
        f"expected revision {t.revision} to serve 100 % of traffic, it serves {percent} %; "
        f"traffic: {t.describe_traffic()}"
    )
