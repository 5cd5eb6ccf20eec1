"""Cloud Run IAM at the local front end: a private service answers 403 without an invoker's ID token.

Cloud Run accepts the token in ``Authorization`` or in ``X-Serverless-Authorization`` (which leaves
``Authorization`` to the application's own auth). Google's signature cannot be checked here: the stack
checks what a client can get wrong — a token present, well formed, for this service's URL (the
audience), not expired.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping

FORBIDDEN_BODY = (
    b"<html><head><title>403 Forbidden</title></head><body><h1>Error: Forbidden</h1>"
    b"<h2>Your client does not have permission to get URL from this server.</h2></body></html>"
)


def _claims(token: str) -> dict[str, object] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


class InvokerCheck:
    def __init__(self, audiences: Callable[[], set[str]], clock: Callable[[], float] = time.time) -> None:
        self._audiences = audiences
        self._clock = clock

    def refusal(self, headers: Mapping[str, str]) -> str:
        """Why the request is refused, or "" when it carries a usable invoker token."""
        for name in ("X-Serverless-Authorization", "Authorization"):
            value = headers.get(name, "")
            if not value.lower().startswith("bearer "):
                continue
            claims = _claims(value[7:].strip())
            if claims is None:
                continue
            audience = claims.get("aud")
            if (
                audience not in {a.rstrip("/") for a in self._audiences()}
                and audience not in self._audiences()
            ):
                return f"token audience {audience!r} is not this service's URL"
            if not isinstance(claims.get("exp"), int | float) or float(claims["exp"]) <= self._clock():  # type: ignore[arg-type]
                return "token expired"
            return ""
        return "no ID token in Authorization or X-Serverless-Authorization"
