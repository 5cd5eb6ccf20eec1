"""Cloud Run IAM at the local front end: a private service admits only an invoker's ID token.

What Cloud Run answers (sources: Troubleshoot Cloud Run issues, https://cloud.google.com/run/docs/troubleshooting,
whose anchors the request log entries below link to; real answers and log entries quoted in public
issues, e.g. google/adk-python#3814 for the 401 page, firebase/firebase-functions-python#193 for the
403 log entry):

- no credential, or not a bearer one: 403 Forbidden, "Your client does not have permission to get URL
  <code>/</code> from this server.", request log "The request was not authenticated. Either allow
  unauthenticated invocations or set the proper Authorization header ... #unauthorized-client";
- a token Cloud Run cannot verify (not a JWT, not signed by Google, expired, or for another audience):
  401 Unauthorized, "Your client does not have permission to the requested URL <code>/</code>.",
  request log "The request was not authorized to invoke this service. The access token could not be
  verified. ... #401";
- a valid token of an identity without ``run.routes.invoke`` (``roles/run.invoker``): 403.

The accepted audience is the service's own URL, with or without a trailing slash: "By convention, the
audience is the full URL of the target service. By default in Cloud Run, this is the Google-generated
URL for a service ending in run.app ... The default Google-generated URL always remains as an accepted
audience value" (Set custom audiences (services),
https://cloud.google.com/run/docs/configuring/custom-audiences). Google documents no tag URL as an
audience, so it is refused here: a client calling a tag URL mints its token for the service URL.

Cloud Run reads ``X-Serverless-Authorization`` when the request carries it, which leaves
``Authorization`` to the application, and ``Authorization`` otherwise. Google's signature cannot be
checked on loopback: tokens are signed with the stack's stand-in key instead (``sign_id_token``), so a
made-up or altered token is refused the way Google's front end refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from google.auth import crypt, exceptions, jwt

# The stack's stand-in for Google's ID-token signing keys: not a secret, only a way to tell a token the
# (stand-in) token endpoint issued from one a client made up or altered.
STAND_IN_SIGNING_KEY = b"cloudrun-smoke local stack: stand-in for Google's ID token signing keys"
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})

_PAGE = (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
    "<title>{status} {reason}</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n"
    "<h1>Error: {reason}</h1>\n<h2>{message}</h2>\n<h2></h2>\n</body></html>\n"
)
NOT_AUTHENTICATED_LOG = (
    "The request was not authenticated. Either allow unauthenticated invocations or set the proper "
    "Authorization header. Read more at https://cloud.google.com/run/docs/securing/authenticating "
    "Additional troubleshooting documentation can be found at: "
    "https://cloud.google.com/run/docs/troubleshooting#unauthorized-client"
)
NOT_VERIFIED_LOG = (
    "The request was not authorized to invoke this service. The access token could not be verified. "
    "Read more at https://cloud.google.com/run/docs/securing/authenticating Additional troubleshooting "
    "documentation can be found at: https://cloud.google.com/run/docs/troubleshooting#401"
)
NOT_AUTHORIZED_LOG = (
    "The request was not authorized to invoke this service. Read more at "
    "https://cloud.google.com/run/docs/securing/authenticating Additional troubleshooting documentation "
    "can be found at: https://cloud.google.com/run/docs/troubleshooting#401"
)


def _html_path(path: str) -> str:
    return path.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def forbidden_body(path: str) -> bytes:
    message = (
        f"Your client does not have permission to get URL <code>{_html_path(path)}</code> from this server."
    )
    return _PAGE.format(status=403, reason="Forbidden", message=message).encode()


def unauthorized_body(path: str) -> bytes:
    message = f"Your client does not have permission to the requested URL <code>{_html_path(path)}</code>."
    return _PAGE.format(status=401, reason="Unauthorized", message=message).encode()


class _StandInSigner(crypt.Signer):
    """HS256 with the stand-in key. google.auth.jwt encodes and decodes the token, but it signs and
    verifies only Google's own schemes (RS256, ES256), which need a private key this stack does not
    have; so this HMAC step, and checking it, are the only JWT code kept here."""

    @property
    def key_id(self) -> str:
        return "local-stack"

    def sign(self, message: str | bytes) -> bytes:
        data = message.encode() if isinstance(message, str) else message
        return hmac.new(STAND_IN_SIGNING_KEY, data, hashlib.sha256).digest()


def sign_id_token(claims: Mapping[str, object]) -> str:
    """An ID token as the stand-in of Google's token endpoint issues it (for tests and ``local up``)."""
    return jwt.encode(_StandInSigner(), dict(claims), header={"alg": "HS256"}).decode()


def _verified_claims(token: str) -> dict[str, object] | None:
    """The token's claims when the stand-in key signed it with HS256; None for anything else."""
    try:
        header = jwt.decode_header(token)
        claims = jwt.decode(token, verify=False)
    except (ValueError, exceptions.GoogleAuthError):
        return None
    if header.get("alg") != "HS256":
        return None
    signed, _, signature = token.rpartition(".")
    expected = base64.urlsafe_b64encode(_StandInSigner().sign(signed)).rstrip(b"=")
    return dict(claims) if hmac.compare_digest(signature.rstrip("=").encode(), expected) else None


@dataclass(frozen=True)
class Refusal:
    """Cloud Run IAM's answer to a request it does not let through."""

    status: int  # 401 or 403
    reason: str  # why, for the emulator's own tests and logs
    log_text: str  # the request log entry's textPayload

    def body(self, path: str) -> bytes:
        return unauthorized_body(path) if self.status == 401 else forbidden_body(path)


def _normalised(url: str) -> str:
    return url.rstrip("/")


class InvokerCheck:
    """``audiences``: the URLs a token may be for (the service's URL); ``invokers``: the identities
    (e-mail or subject) that hold ``roles/run.invoker``, or None for any Google-signed identity."""

    def __init__(
        self,
        audiences: Callable[[], Collection[str]],
        invokers: Collection[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._audiences = audiences
        self._invokers = None if invokers is None else frozenset(invokers)
        self._clock = clock

    def refusal(self, headers: Mapping[str, str]) -> Refusal | None:
        """Why Cloud Run IAM refuses the request, or None when it lets it through."""
        name = "X-Serverless-Authorization" if headers.get("X-Serverless-Authorization") else "Authorization"
        value = (headers.get(name) or "").strip()
        if not value.lower().startswith("bearer ") or not value[7:].strip():
            return Refusal(403, f"no bearer token in {name}", NOT_AUTHENTICATED_LOG)
        claims = _verified_claims(value[7:].strip())
        if claims is None:
            return Refusal(401, f"the token in {name} is not a JWT signed by Google", NOT_VERIFIED_LOG)
        if claims.get("iss") not in GOOGLE_ISSUERS:
            return Refusal(401, f"token issuer {claims.get('iss')!r} is not Google", NOT_VERIFIED_LOG)
        audience = claims.get("aud")
        accepted = {_normalised(a) for a in self._audiences() if a}
        if not isinstance(audience, str) or _normalised(audience) not in accepted:
            return Refusal(401, f"token audience {audience!r} is not this service's URL", NOT_VERIFIED_LOG)
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or float(expiry) <= self._clock():
            return Refusal(401, "token expired", NOT_VERIFIED_LOG)
        identity = claims.get("email") or claims.get("sub")
        if self._invokers is not None and identity not in self._invokers:
            return Refusal(403, f"{identity!r} does not hold roles/run.invoker", NOT_AUTHORIZED_LOG)
        return None
