"""Runbook 4.2 — health: the service answers, and is ready (every component warmed up)."""

from __future__ import annotations

import pytest

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.service.http import ServiceClient, expect_json
from cloudrun_smoke.waiting import wait_until

# Read-only and quick: part of the on-call subset.
pytestmark = pytest.mark.oncall


def test_health_endpoint_answers_as_configured(smoke_service: ServiceClient, smoke_env: Environment) -> None:
    path = smoke_env.health_path
    body = expect_json(smoke_service.get(path), 200, f"health (GET {path})")
    wrong = {
        k: body.get(k) if isinstance(body, dict) else None
        for k, v in smoke_env.health_expect.items()
        if not isinstance(body, dict) or body.get(k) != v
    }
    assert not wrong, f"GET {path}: expected fields {dict(smoke_env.health_expect)}, got {body!r}"


def test_service_is_ready(smoke_service: ServiceClient, smoke_env: Environment) -> None:
    path = smoke_env.readiness_path
    if not path:
        pytest.skip(f"no readiness_path for environment {smoke_env.name!r} in {smoke_env.source}")

    def ready() -> dict | None:
        response = smoke_service.get(path)
        if response.status_code == 503:
            return None  # still warming up: a slow cold start is allowed, within the deadline
        return expect_json(response, 200, f"readiness (GET {path})")

    body = wait_until(ready, timeout=smoke_env.log_deadline, what=f"GET {path} to answer 200")
    assert isinstance(body, dict), f"GET {path}: expected a JSON object, got {body!r}"
    not_ready = sorted(k for k, v in body.items() if isinstance(v, bool) and k != "ok" and v is not True)
    assert body.get("ok", True) is True and not not_ready, (
        f"GET {path}: components not ready: {', '.join(not_ready) or '(ok is false)'}; body: {body!r}"
    )
