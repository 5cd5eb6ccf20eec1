"""The auth headers of one user's requests, assembled in one place: the application's own and Cloud Run
IAM's, side by side."""

from __future__ import annotations

import pytest

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.service.auth import request_headers

INVOKER = {"X-Serverless-Authorization": "Bearer iam-token"}


def env(auth: str, **kw: str) -> Environment:
    return Environment(name="t", source="t", project="p", region="r", service="s", auth=auth, **kw)


def test_the_application_auth_and_the_invokers_token_never_overwrite_each_other() -> None:
    headers = request_headers(env("dev-bypass"), "u1", "s1", url="http://svc", invoker=INVOKER)
    assert headers == {"x-dev-bypass": "1", "x-user-id": "u1", "x-session-id": "s1", **INVOKER}
    assert request_headers(env("none"), "u1", "s1", url="http://svc", invoker={}) == {}


def test_a_mode_other_than_the_environments_can_be_asked_for() -> None:
    """The dev-bypass check sends the bypass whatever the environment's own auth mode is."""
    headers = request_headers(env("bearer"), "u1", "s1", url="http://svc", invoker=INVOKER, mode="dev-bypass")
    assert headers["x-dev-bypass"] == "1" and "Authorization" not in headers


def test_a_bearer_token_comes_from_its_variable_and_its_absence_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMOKE_TEST_TOKEN", "tok-123")
    bearer = env("bearer", bearer_token_env="SMOKE_TEST_TOKEN")
    assert request_headers(bearer, "u1", "s1", url="http://svc", invoker=INVOKER) == {
        "Authorization": "Bearer tok-123",
        **INVOKER,
    }
    monkeypatch.delenv("SMOKE_TEST_TOKEN")
    with pytest.raises(SmokeError, match=r"\$SMOKE_TEST_TOKEN"):
        request_headers(bearer, "u1", "s1", url="http://svc", invoker=INVOKER)
