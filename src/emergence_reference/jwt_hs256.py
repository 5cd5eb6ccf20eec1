"""HS256 JSON Web Tokens with the standard library: the app's own login tokens need nothing more.

Only what the service signs itself is accepted: header ``{"alg": "HS256", "typ": "JWT"}``, a valid
signature and an ``exp`` in the future.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

_HEADER = {"alg": "HS256", "typ": "JWT"}


class InvalidTokenError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest())


def encode(claims: dict[str, Any], secret: str) -> str:
    header = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{_sign(f'{header}.{payload}', secret)}"


def decode(token: str, secret: str, now: float | None = None) -> dict[str, Any]:
    try:
        header_b64, payload_b64, signature = token.split(".")
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
    except (ValueError, UnicodeDecodeError):
        raise InvalidTokenError("malformed token") from None
    if header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise InvalidTokenError("unsupported token")
    if not hmac.compare_digest(signature, _sign(f"{header_b64}.{payload_b64}", secret)):
        raise InvalidTokenError("bad signature")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= (time.time() if now is None else now):
        raise InvalidTokenError("expired token")
    return claims
