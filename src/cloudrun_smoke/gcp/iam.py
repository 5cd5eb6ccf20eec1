"""Telling Cloud Run IAM's refusal from the application's, and what to check when it is IAM's.

Google's front end refuses a request to a private service before any instance sees it, with an HTML
page (the application answers JSON): 403 "Your client does not have permission to get URL ... from this
server." when the request carries no ID token or the token's identity lacks ``run.routes.invoke``
(``roles/run.invoker``), 401 "Your client does not have permission to the requested URL ..." when the
token cannot be verified: another audience, expired, not signed by Google. Sources: Troubleshoot Cloud
Run issues (https://cloud.google.com/run/docs/troubleshooting, sections #unauthorized-client and #401,
which Cloud Run's request log entries link to); the pages as quoted in public issues (e.g.
google/adk-python#3814).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
from google.auth import jwt

TROUBLESHOOTING = "https://cloud.google.com/run/docs/troubleshooting"
_MARK = "Your client does not have permission to"


def is_refusal(response: httpx.Response) -> bool:
    """Whether Google's front end (Cloud Run IAM), not the application, answered this 401/403."""
    if response.status_code not in (401, 403):
        return False
    if "text/html" not in response.headers.get("content-type", ""):
        return False
    try:
        return _MARK in response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return False


def _claims(headers: Mapping[str, str]) -> tuple[str, dict[str, object] | None]:
    """The header Cloud Run reads the ID token from, and the token's claims (never the token)."""
    name = "X-Serverless-Authorization" if headers.get("X-Serverless-Authorization") else "Authorization"
    value = headers.get(name) or ""
    if not value.lower().startswith("bearer "):
        return name, None
    try:  # read, not verified: Cloud Run verified it, we only name its audience and identity
        claims = jwt.decode(value[7:].strip(), verify=False)
    except (ValueError, TypeError):  # binascii and JSON errors are ValueErrors
        return name, None
    return name, claims if isinstance(claims, dict) else None


def _token(headers: Mapping[str, str], now: float) -> str:
    name, claims = _claims(headers)
    if not headers.get(name):
        return "the request carried no ID token (neither X-Serverless-Authorization nor Authorization)"
    if claims is None:
        return f"{name} carried no ID token (not a JWT)"
    who = claims.get("email") or claims.get("sub") or "?"
    said = f"the ID token in {name} is for audience {claims.get('aud')!r}, identity {who!r}"
    expiry = claims.get("exp")
    if isinstance(expiry, int | float):
        when = datetime.fromtimestamp(float(expiry), UTC).strftime("%H:%M:%S UTC")
        said += f", {'expired' if expiry <= now else 'expires'} {when}"
    return said


def explain(response: httpx.Response, now: float | None = None) -> str:
    """For a refusal by Cloud Run IAM: one paragraph naming it, the token's claims and what to check;
    "" for any other answer."""
    if not is_refusal(response):
        return ""
    said = _token(response.request.headers, time.time() if now is None else now)
    if response.status_code == 401:
        meaning = (
            "401: Cloud Run could not verify the ID token (another audience, expired, or not Google-signed); "
            "the audience must be the service's URL (not a tag URL) or one of its custom audiences "
            "(`[env.NAME] id_token_audience`)"
        )
        anchor = "#401"
    else:
        meaning = (
            "403: no ID token, or its identity lacks roles/run.invoker on the service; check "
            "`gcloud run services get-iam-policy SERVICE --region REGION` and `[env.NAME] invoker`"
        )
        anchor = "#unauthorized-client"
    return (
        f"Cloud Run IAM refused the request before it reached the application ({meaning}); {said}; "
        f"see {TROUBLESHOOTING}{anchor}"
    )
