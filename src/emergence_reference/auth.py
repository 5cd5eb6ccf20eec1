"""Who is calling: the dev bypass headers now, the app's own HS256 JWT later.

The public service honours the bypass whatever ``ENVIRONMENT`` says, and so does this one: the smoke
suite's security check must be able to see that behaviour. Every refusal is a 401 with a JSON
``{"detail": ...}`` body.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request, status

BYPASS_HEADER = "x-dev-bypass"
USER_HEADER = "x-user-id"
SESSION_HEADER = "x-session-id"
BYPASS_ROLE = "admin"
_TRUTHY = {"1", "true", "yes", "on"}


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


async def require_user(request: Request) -> Principal:
    """FastAPI dependency for every authenticated route."""
    headers = request.headers
    if headers.get(BYPASS_HEADER, "").strip().lower() in _TRUTHY:
        user_id = headers.get(USER_HEADER, "").strip()
        if not user_id:
            raise _unauthorized(f"Dev bypass requires the {USER_HEADER} header")
        session_id = headers.get(SESSION_HEADER, "").strip() or None
        return Principal(user_id=user_id, session_id=session_id, role=BYPASS_ROLE, method="dev-bypass")
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer ") or request.cookies.get("id_token"):
        # Token login is not implemented yet: no token can be valid.
        raise _unauthorized("Invalid or expired token")
    raise _unauthorized("Authentication required")
