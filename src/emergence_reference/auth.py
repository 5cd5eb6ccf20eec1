"""Who is calling: the dev bypass headers, or the app's own HS256 JWT from ``POST /api/auth/login``.

The public service honours the bypass whatever ``ENVIRONMENT`` says, and so does this one by default;
``AUTH_DEV_BYPASS=0`` forbids it (the ``dev-bypass-accepted`` fault ignores that), so the smoke suite's
security check has both behaviours to look at. Every refusal is a 401 with a JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel

from emergence_reference import jwt_hs256
from emergence_reference.faults import DEV_BYPASS_ACCEPTED

logger = logging.getLogger(__name__)

BYPASS_HEADER = "x-dev-bypass"
USER_HEADER = "x-user-id"
SESSION_HEADER = "x-session-id"
BYPASS_ROLE = "admin"
TOKEN_ROLE = "member"
TOKEN_TTL_SECONDS = 24 * 3600
_TRUTHY = {"1", "true", "yes", "on"}

router = APIRouter(prefix="/api/auth", tags=["auth"])


@dataclass(frozen=True)
class Principal:
    user_id: str
    session_id: str | None
    role: str
    method: str


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def user_id_for(email: str) -> str:
    """A stable user id that keeps the e-mail address out of log lines."""
    return "user-" + hashlib.sha256(email.lower().encode()).hexdigest()[:16]


async def require_user(request: Request) -> Principal:
    """FastAPI dependency for every authenticated route."""
    settings = request.app.state.runtime.settings
    headers = request.headers
    session_header = headers.get(SESSION_HEADER, "").strip() or None
    if headers.get(BYPASS_HEADER, "").strip().lower() in _TRUTHY:
        if not settings.dev_bypass_allowed and not settings.faults.on(DEV_BYPASS_ACCEPTED):
            raise _unauthorized("Dev bypass is disabled in this environment")
        user_id = headers.get(USER_HEADER, "").strip()
        if not user_id:
            raise _unauthorized(f"Dev bypass requires the {USER_HEADER} header")
        return Principal(user_id=user_id, session_id=session_header, role=BYPASS_ROLE, method="dev-bypass")
    authorization = headers.get("authorization", "")
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
    token = token or request.cookies.get("id_token")
    if not token:
        raise _unauthorized("Authentication required")
    try:
        claims = jwt_hs256.decode(token, settings.jwt_secret)
    except jwt_hs256.InvalidTokenError:
        raise _unauthorized("Invalid or expired token") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _unauthorized("Invalid or expired token")
    session = session_header or (claims.get("sid") if isinstance(claims.get("sid"), str) else None)
    return Principal(
        user_id=subject, session_id=session, role=str(claims.get("role", TOKEN_ROLE)), method="jwt"
    )


class LoginRequest(BaseModel):
    email: str
    password: str


@router.post("/login")
async def login(body: LoginRequest, request: Request, response: Response) -> dict[str, Any]:
    settings = request.app.state.runtime.settings
    expected = settings.allowlist.get(body.email.strip().lower())
    if expected is None or not hmac.compare_digest(expected.encode(), body.password.encode()):
        logger.warning("Login refused")  # never the address nor the password
        raise _unauthorized("Invalid credentials")
    now = int(time.time())
    user_id = user_id_for(body.email)
    session_id = uuid.uuid4().hex
    claims = {
        "sub": user_id,
        "sid": session_id,
        "role": TOKEN_ROLE,
        "iat": now,
        "exp": now + TOKEN_TTL_SECONDS,
    }
    token = jwt_hs256.encode(claims, settings.jwt_secret)
    response.set_cookie("id_token", token, httponly=True, samesite="lax", max_age=TOKEN_TTL_SECONDS)
    logger.info("Login accepted for %s", user_id)
    return {
        "token": token,
        "token_type": "bearer",
        "expires_at": claims["exp"],
        "user_id": user_id,
        "session_id": session_id,
        "role": TOKEN_ROLE,
    }
