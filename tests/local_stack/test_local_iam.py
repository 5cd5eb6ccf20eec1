"""Cloud Run IAM at the local front end, and how the harness names its refusals.

What Google's front end answers for a private service (Troubleshoot Cloud Run issues,
https://cloud.google.com/run/docs/troubleshooting, sections #unauthorized-client and #401; the pages
and request log lines as quoted from real services in public issues, e.g. google/adk-python#3814 for
the 401 page and firebase/firebase-functions-python#193 for the 403 log line):
no token -> 403, a token Cloud Run cannot verify (another audience, expired, not signed by Google)
-> 401, a valid token of an identity without roles/run.invoker -> 403. The audience Cloud Run accepts
is the service's own URL ("The default Google-generated URL always remains as an accepted audience
value", https://cloud.google.com/run/docs/configuring/custom-audiences), on the tag URL too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials

from cloudrun_smoke.gcp.iam import explain, is_refusal
from cloudrun_smoke.local.iam import sign_id_token
from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import logging_client
from helpers.paths import TINY
from helpers.stacks import tiny_stack_config

PROJECT = "iam-test"
INVOKER = "smoke@iam-test.iam.gserviceaccount.com"
OUTSIDER = "someone@iam-test.iam.gserviceaccount.com"
REQUESTS = f"projects/{PROJECT}/logs/run.googleapis.com%2Frequests"
CUSTOM = "https://api.example.com"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    config = tiny_stack_config(
        PROJECT,
        candidate_cmd=TINY,
        tag="canary",
        reconcile_delay=0.05,
        iam=True,
        invokers=(INVOKER,),
        custom_audiences=(CUSTOM,),
    )
    with LocalStack(config) as stack:
        yield stack


def token(audience: str, email: str = INVOKER, expires_in: float = 600) -> str:
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": audience, "email": email, "sub": "1"}
    return sign_id_token({**claims, "iat": now, "exp": int(now + expires_in)})


def call(url: str, value: str = "", header: str = "X-Serverless-Authorization") -> httpx.Response:
    return httpx.get(f"{url}/who", headers={header: f"Bearer {value}"} if value else {}, timeout=10)


def test_no_token_is_403_with_googles_page_and_log_line(stack: LocalStack) -> None:
    response = call(stack.service_url)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>403 Forbidden</title>" in response.text
    assert (
        "Your client does not have permission to get URL <code>/who</code> from this server." in response.text
    )
    client = logging_client(stack.logging_api_endpoint, PROJECT)
    logged = wait_until(
        lambda: (
            [
                e
                for e in client.list_entries(filter_=f'logName="{REQUESTS}"')
                if e.http_request["status"] == 403
            ]
            or None
        ),
        timeout=10,
        what="the 403's request log entry",
        interval=0.1,
    )
    assert logged[0].payload.startswith("The request was not authenticated. Either allow unauthenticated")
    assert logged[0].payload.endswith("troubleshooting#unauthorized-client")


def test_a_valid_invokers_token_passes_in_either_header(stack: LocalStack) -> None:
    assert call(stack.service_url, token(stack.service_url)).status_code == 200
    assert call(stack.service_url, token(stack.service_url), header="Authorization").status_code == 200
    assert call(stack.service_url, token(stack.service_url + "/")).status_code == 200, "trailing slash"


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("another audience", lambda url: token("https://other-service-abc-uc.a.run.app")),
        ("expired", lambda url: token(url, expires_in=-5)),
        ("invalid signature", lambda url: token(url)[:-6] + "AAAAAA"),
        (
            "not issued by Google",
            lambda url: sign_id_token({"iss": "https://securetoken.google.com/p", "aud": url}),
        ),
    ],
)
def test_a_token_cloud_run_cannot_verify_is_401(stack: LocalStack, case: str, make) -> None:  # type: ignore[no-untyped-def]
    response = call(stack.service_url, make(stack.service_url))
    assert response.status_code == 401, case
    assert "<title>401 Unauthorized</title>" in response.text
    assert "Your client does not have permission to the requested URL <code>/who</code>." in response.text


def test_a_valid_token_of_an_identity_without_the_invoker_role_is_403(stack: LocalStack) -> None:
    response = call(stack.service_url, token(stack.service_url, email=OUTSIDER))
    assert response.status_code == 403
    assert "<title>403 Forbidden</title>" in response.text


def test_through_a_tag_url_the_audience_is_the_service_url(stack: LocalStack) -> None:
    tag_url = stack.tag_url("canary")
    assert call(tag_url, token(stack.service_url)).json()["revision"] == stack.candidate_revision
    assert call(tag_url, token(tag_url)).status_code == 401, "a tag URL is not a documented audience"


def test_a_custom_audience_is_accepted_on_every_url_and_reported_by_the_admin_api(stack: LocalStack) -> None:
    """ "Setting custom audiences for Cloud Run is done at the service level and applies to all serving
    revisions" (custom audiences page); the v2 Service reports them in ``customAudiences``."""
    from google.cloud import run_v2

    assert call(stack.service_url, token(CUSTOM)).status_code == 200
    assert call(stack.tag_url("canary"), token(CUSTOM)).status_code == 200
    services = run_v2.ServicesClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": stack.run_api_endpoint},
    )
    service = services.get_service(name=f"projects/{PROJECT}/locations/us-central1/services/tiny")
    assert list(service.custom_audiences) == [CUSTOM]


def test_x_serverless_authorization_is_the_one_checked_when_present(stack: LocalStack) -> None:
    good = token(stack.service_url)
    both = {"X-Serverless-Authorization": "Bearer not-a-jwt", "Authorization": f"Bearer {good}"}
    assert httpx.get(f"{stack.service_url}/who", headers=both, timeout=10).status_code == 401


def test_the_harness_names_cloud_run_iam_and_what_to_check(stack: LocalStack) -> None:
    unauthorized = call(stack.tag_url("canary"), token(stack.tag_url("canary")))
    said = explain(unauthorized)
    assert said.startswith("Cloud Run IAM refused the request before it reached the application (401")
    assert f"audience {stack.tag_url('canary')!r}" in said and f"identity {INVOKER!r}" in said
    assert "not a tag URL" in said and "id_token_audience" in said and "troubleshooting#401" in said
    assert token(stack.tag_url("canary")) not in said

    forbidden = explain(call(stack.service_url, token(stack.service_url, email=OUTSIDER)))
    assert "(403" in forbidden and "roles/run.invoker" in forbidden and f"identity {OUTSIDER!r}" in forbidden
    assert "no ID token" in explain(call(stack.service_url))


def test_the_applications_own_401_is_not_taken_for_iams() -> None:
    request = httpx.Request("GET", "https://svc-abc-uc.a.run.app/api/threads")
    app = httpx.Response(401, json={"detail": "Not authenticated"}, request=request)
    assert not is_refusal(app) and explain(app) == ""
