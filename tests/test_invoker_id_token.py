"""`invoker = "id-token"` end to end: a private service (the stack's front end checks Cloud Run IAM),
an ID token minted by google-auth from a generated service-account key whose token endpoint is a local
stand-in for Google's (the one part that cannot run here)."""

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

from smoke_runs import ROOT, everything_written, run_smoke


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class TokenEndpoint(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint for the jwt-bearer grant, as far as google-auth needs it."""

    issued: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        assertion = _claims(form["assertion"][0])
        token = ".".join(
            [
                _b64({"alg": "RS256", "typ": "JWT"}),
                _b64(
                    {
                        "aud": assertion["target_audience"],
                        "iss": "https://accounts.google.com",
                        "email": assertion["iss"],
                        "exp": int(time.time()) + 3600,
                        "iat": int(time.time()),
                    }
                ),
                "c2lnbmF0dXJl",
            ]
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


def private_config(tmp_path: Path) -> Path:
    text = (ROOT / "smoke.toml").read_text()
    text = text.replace(
        'auth = "dev-bypass"\nsmoke_user_prefix',
        'auth = "dev-bypass"\ninvoker = "id-token"\nsmoke_user_prefix',
        1,
    )
    text = text.replace("[env.local.stack]\n", "[env.local.stack]\niam = true\n", 1)
    assert 'invoker = "id-token"' in text and "iam = true" in text
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_a_private_service_is_reached_with_an_id_token_from_a_key_file(
    tmp_path: Path, token_endpoint: str
) -> None:
    key = service_account_key(tmp_path, token_endpoint)
    TokenEndpoint.issued.clear()
    run = run_smoke(
        tmp_path,
        "--env",
        "local",
        f"--smoke-config={private_config(tmp_path)}",
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
def test_without_a_token_the_private_service_answers_403(tmp_path: Path) -> None:
    from cloudrun_smoke.config import load_config
    from cloudrun_smoke.local.stack import stack_for

    env = load_config(private_config(tmp_path)).environment("local", {})
    with stack_for(env) as stack:
        assert httpx.get(stack.service_url + "/api/health").status_code == 403


@pytest.mark.slow
def test_the_apps_login_reaches_a_private_service_with_the_invoker_token(
    tmp_path: Path, token_endpoint: str
) -> None:
    """`auth = "login"` behind Cloud Run IAM: the login is a request to the service like any other,
    so it carries the ID token in `X-Serverless-Authorization` (without it IAM answers 403)."""
    from test_auth_modes import CREDENTIALS, login_config

    config = login_config(tmp_path)
    text = config.read_text()
    text = text.replace('auth = "login"\n', 'auth = "login"\ninvoker = "id-token"\n', 1)
    text = text.replace("[env.local.stack]\n", "[env.local.stack]\niam = true\n", 1)
    assert 'invoker = "id-token"' in text and "iam = true" in text
    config.write_text(text)
    key = service_account_key(tmp_path, token_endpoint)
    run = run_smoke(
        tmp_path,
        "--env",
        "local",
        f"--smoke-config={config}",
        "-k",
        "health or archive_enqueues",
        env={**CREDENTIALS, "GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    assert run.returncode == 0, run.output
