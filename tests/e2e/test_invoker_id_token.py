"""`invoker = "id-token"` end to end: a private service (the stack's front end checks Cloud Run IAM),
an ID token minted by google-auth from a generated service-account key whose token endpoint is a local
stand-in for Google's (the one part that cannot run here; it signs with the stack's stand-in key).

The token's audience is the service's URL, also through a tag URL: "The default Google-generated URL
always remains as an accepted audience value" (Set custom audiences (services),
https://cloud.google.com/run/docs/configuring/custom-audiences); no tag URL is documented as one."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloudrun_smoke.local.iam import sign_id_token
from helpers.smoke_configs import (
    CREDENTIALS,
    assert_the_bypass_was_accepted,
    config_with_candidate,
    login_config,
)
from helpers.smoke_runs import ROOT, everything_written, run_local


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class TokenEndpoint(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint for the jwt-bearer grant, as far as google-auth needs it."""

    issued: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        assertion = _claims(form["assertion"][0])
        token = sign_id_token(
            {
                "aud": assertion["target_audience"],
                "iss": "https://accounts.google.com",
                "email": assertion["iss"],
                "exp": int(time.time()) + 3600,
                "iat": int(time.time()),
            }
        )
        TokenEndpoint.issued.append(token)
        body = json.dumps({"id_token": token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def token_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()


def service_account_key(tmp_path: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "smoke-local",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "smoke@smoke-local.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


def private_config(tmp_path: Path, base: Path | None = None) -> Path:
    """The shipped local environment (or ``base``) as a private service the suite invokes."""
    text = (base or ROOT / "smoke.toml").read_text()
    text = text.replace("\nsmoke_user_prefix", '\ninvoker = "id-token"\nsmoke_user_prefix', 1)
    text = text.replace("[env.local.stack]\n", "[env.local.stack]\niam = true\n", 1)
    assert 'invoker = "id-token"' in text and "iam = true" in text
    path = tmp_path / "smoke-private.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_a_private_service_is_reached_with_an_id_token_from_a_key_file(
    tmp_path: Path, token_endpoint: str
) -> None:
    key = service_account_key(tmp_path, token_endpoint)
    TokenEndpoint.issued.clear()
    run = run_local(
        tmp_path,
        private_config(tmp_path),
        "-k",
        "health or archive_enqueues",
        env={"GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    assert run.returncode == 0, run.output
    assert len(TokenEndpoint.issued) == 1, "one ID token for the whole run"
    assert _claims(TokenEndpoint.issued[0])["aud"] == run.verdict["target"]["url"]
    written = everything_written(run, tmp_path)
    assert not any(TokenEndpoint.issued[0] in text or "eyJ" in text for text in written)


@pytest.mark.slow
def test_a_candidate_through_its_tag_url_gets_a_token_for_the_service_url(
    tmp_path: Path, token_endpoint: str
) -> None:
    key = service_account_key(tmp_path, token_endpoint)
    TokenEndpoint.issued.clear()
    config = private_config(tmp_path, config_with_candidate(tmp_path))
    run = run_local(
        tmp_path,
        config,
        "--tag",
        "canary",
        "-k",
        "deployment or health",
        env={"GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    assert run.returncode == 0, run.output
    target = run.verdict["target"]
    tag_urls = {t["uri"] for t in target["traffic"] if t.get("tag")}
    assert target["url"] in tag_urls, "the suite must call the tag URL"
    audiences = {_claims(token)["aud"] for token in TokenEndpoint.issued}
    assert len(audiences) == 1 and not audiences & tag_urls, f"token for {audiences}, not the service URL"


def app_bearer_token() -> str:
    """A token of the application's own (what a CI auth step hands over), signed with its dev key."""
    from emergence_reference import jwt_hs256
    from emergence_reference.config import DEFAULT_JWT_SECRET

    now = int(time.time())
    claims = {"sub": "smoke-bearer", "role": "user", "iat": now, "exp": now + 600}
    return jwt_hs256.encode(claims, DEFAULT_JWT_SECRET)


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["bearer", "login"])
def test_the_bypass_check_carries_the_invokers_token_and_tests_the_application(
    auth: str, tmp_path: Path, token_endpoint: str
) -> None:
    """Without the invoker's token, IAM refused the bypass request (403) and the check passed without
    testing the application (bearer); the login itself was refused by IAM (login)."""
    key = service_account_key(tmp_path, token_endpoint)
    base = login_config(tmp_path)
    base.write_text(base.read_text().replace('auth = "login"', f'auth = "{auth}"', 1))
    config = private_config(tmp_path, base)
    env = {
        **CREDENTIALS,
        "SMOKE_BEARER_TOKEN": app_bearer_token(),
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "SMOKE_LOCAL_FAULTS": "dev-bypass-accepted",
    }
    run = run_local(tmp_path, config, "-k", "bypass", env=env)
    assert_the_bypass_was_accepted(run)


@pytest.mark.slow
def test_without_a_token_the_private_service_answers_403(tmp_path: Path) -> None:
    from cloudrun_smoke.config.environment import load_config
    from cloudrun_smoke.local.stack import stack_for

    env = load_config(private_config(tmp_path)).environment("local", {})
    with stack_for(env) as stack:
        assert httpx.get(stack.service_url + "/api/health").status_code == 403


def test_the_audience_is_the_service_url_unless_a_custom_one_is_configured(tmp_path: Path) -> None:
    """Through a tag URL or --service-url, the token is still for the service's URL (custom audiences
    page: the Google-generated URL is always accepted); id_token_audience names a custom audience."""
    from cloudrun_smoke.config.environment import load_config
    from cloudrun_smoke.service.auth import id_token_audience

    env = load_config(ROOT / "smoke.toml").environment("prod", {})
    service, tag = "https://svc-abc-uc.a.run.app", "https://canary---svc-abc-uc.a.run.app"
    assert id_token_audience(env.with_overrides(id_token_audience=""), service, tag) == service
    custom = env.with_overrides(id_token_audience="https://api.example.com")
    assert id_token_audience(custom, service, tag) == "https://api.example.com"
    assert id_token_audience(env.with_overrides(id_token_audience=""), "", tag) == tag, "no service URL known"


@pytest.mark.slow
def test_without_an_invoker_the_failure_names_cloud_run_iam_and_what_to_check(tmp_path: Path) -> None:
    """An on-call engineer must see that Google's front end refused, not the application."""
    config = private_config(tmp_path)
    config.write_text(config.read_text().replace('invoker = "id-token"\n', "", 1))
    run = run_local(tmp_path, config, "-k", "health_endpoint")
    assert run.returncode == 1, run.output
    message = run.messages["test_health.py::test_health_endpoint_answers_as_configured"]
    first = message.splitlines()[0]
    assert "→ 403 Forbidden (Google's HTML page): Cloud Run IAM refused the request before it" in first
    assert "roles/run.invoker" in first and "no ID token" in first
    assert "troubleshooting#unauthorized-client" in message


@pytest.mark.slow
def test_the_bypass_check_fails_when_cloud_run_iam_refused_its_request(tmp_path: Path) -> None:
    """No invoker configured on a private service: IAM's 403 is not the application's refusal."""
    base = login_config(tmp_path)
    base.write_text(base.read_text().replace('auth = "login"', 'auth = "bearer"', 1))
    config = private_config(tmp_path, base)
    config.write_text(config.read_text().replace('invoker = "id-token"\n', "", 1))
    env = {"SMOKE_BEARER_TOKEN": app_bearer_token()}
    run = run_local(tmp_path, config, "-k", "bypass", env=env)
    assert run.returncode == 1, run.output
    message = run.messages["test_security.py::test_dev_bypass_is_refused"]
    assert "the dev bypass was not tested: Cloud Run IAM refused the request" in message
    assert 'give the suite an invoker (invoker = "id-token" in [env.local])' in message


@pytest.mark.slow
def test_the_apps_login_reaches_a_private_service_with_the_invoker_token(
    tmp_path: Path, token_endpoint: str
) -> None:
    """`auth = "login"` behind Cloud Run IAM: the login is a request to the service like any other,
    so it carries the ID token in `X-Serverless-Authorization` (without it IAM answers 403)."""
    config = login_config(tmp_path)
    text = config.read_text()
    text = text.replace('auth = "login"\n', 'auth = "login"\ninvoker = "id-token"\n', 1)
    text = text.replace("[env.local.stack]\n", "[env.local.stack]\niam = true\n", 1)
    assert 'invoker = "id-token"' in text and "iam = true" in text
    config.write_text(text)
    key = service_account_key(tmp_path, token_endpoint)
    run = run_local(
        tmp_path,
        config,
        "-k",
        "health or archive_enqueues",
        env={**CREDENTIALS, "GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    assert run.returncode == 0, run.output
