"""The IAM explanation reads the ID token's claims (never prints the token) and says when the bearer
value is no JWT at all."""

from __future__ import annotations

import base64
import json

import httpx

from cloudrun_smoke.gcp.iam import explain

REFUSAL = "<html><body>Error: Forbidden. Your client does not have permission to get URL / from this server.</body></html>"


def _refused(status: int, authorization: str) -> httpx.Response:
    request = httpx.Request("GET", "https://svc-abc-ew.a.run.app/", headers={"Authorization": authorization})
    return httpx.Response(status, text=REFUSAL, headers={"content-type": "text/html"}, request=request)


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_a_token_is_described_by_its_claims_never_shown() -> None:
    token = _unsigned({"aud": "https://other.example", "email": "ci@p.iam.gserviceaccount.com", "exp": 100})
    said = explain(_refused(401, f"Bearer {token}"), now=200.0)
    assert "audience 'https://other.example'" in said and "ci@p.iam.gserviceaccount.com" in said
    assert "expired 00:01:40 UTC" in said and token not in said


def test_a_bearer_value_that_is_no_jwt_is_named_so() -> None:
    for value in ("Bearer abc", "Bearer a.b.c", "Bearer ..."):
        assert "Authorization carried no ID token (not a JWT)" in explain(_refused(403, value)), value
