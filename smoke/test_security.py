"""Security — the dev bypass is off where it must be, and one user never sees another's data."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.service import contract
from cloudrun_smoke.service.http import describe_response
from cloudrun_smoke.service.users import SmokeUser

pytestmark = pytest.mark.security


def test_dev_bypass_is_refused(  # type: ignore[no-untyped-def]
    smoke_env: Environment, smoke_target, smoke_run, smoke_invoker: dict[str, str]
) -> None:
    """The bypass alone must be refused by the application. On a private service the request carries
    the invoker's ID token (X-Serverless-Authorization), so that Cloud Run IAM lets it through: IAM's
    refusal says nothing about the application."""
    if not smoke_env.checks.dev_bypass_rejected:
        pytest.skip(f"[env.{smoke_env.name}.checks] dev_bypass_rejected = false: not required here")
    from cloudrun_smoke.gcp.iam import explain
    from cloudrun_smoke.service.auth import request_headers
    from cloudrun_smoke.service.http import ServiceClient

    user_id, session_id = f"{smoke_run.user_id}-bypass", smoke_run.session_id
    headers = request_headers(
        smoke_env, user_id, session_id, url=smoke_target.url, invoker=smoke_invoker, mode="dev-bypass"
    )
    bypass = ServiceClient(smoke_target.url, headers, smoke_run.run_id, timeout=smoke_env.http_timeout)
    try:
        response = bypass.get("/api/threads/archived/list")
    finally:
        bypass.close()
    if explain(response):
        fix = (
            "the invoker's token was refused too"
            if smoke_invoker
            else f'give the suite an invoker (invoker = "id-token" in [env.{smoke_env.name}])'
        )
        pytest.fail(
            "the dev bypass was not tested: Cloud Run IAM refused the request before the application saw "
            f"it; {fix}. " + describe_response(response)
        )
    assert response.status_code in (401, 403), (
        "a request with x-dev-bypass: 1 and x-user-id but no token must be refused here, got "
        + describe_response(response)
    )


@pytest.mark.writes
def test_tenant_isolation(smoke_env: Environment, smoke_users: Callable[[str], SmokeUser]) -> None:
    if not smoke_env.user_is_chosen_by_suite:
        pytest.skip(f"auth mode {smoke_env.auth!r} gives the suite one identity: it cannot act as two users")
    if not smoke_env.checks.tenant_isolation:
        pytest.skip(f"[env.{smoke_env.name}.checks] tenant_isolation = false")
    owner, other = smoke_users("tenant-a"), smoke_users("tenant-b")
    marker = f"smokemarker{secrets.token_hex(6)}"
    thread_id = owner.new_thread("cloudrun-smoke isolation", f"Private note {marker} for the owner only.")

    response = other.client.get(contract.thread_path(thread_id))
    assert response.status_code == 404, (
        f"user {other.user_id} read thread {thread_id} of user {owner.user_id}: "
        + describe_response(response)
    )
    leaked = [r for r in contract.search_messages(other.client, marker) if marker in str(r)]
    assert not leaked, (
        f"GET /api/memory/search?q={marker} as {other.user_id} returned {len(leaked)} message(s) of "
        f"{owner.user_id}: the search is not scoped to the caller; first: {leaked[0]!r}"
    )
