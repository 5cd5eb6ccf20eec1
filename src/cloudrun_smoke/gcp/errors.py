"""Google's errors as ours: one mapping for every Google API the harness calls, with each API's hints.

A failed call becomes one :class:`SmokeError` line that says what the harness was doing, where, and
what to do (the role to grant, the command to run), never a traceback and never a token.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions

from cloudrun_smoke.errors import SmokeError

# What a call to a Google API may raise: the API's answer, the credentials, or the network (OSError:
# connection refused, DNS, TLS).
GOOGLE_ERRORS: tuple[type[Exception], ...] = (gexc.GoogleAPIError, auth_exceptions.GoogleAuthError, OSError)

# Refused for the caller: the JSON (REST) transports, which discovery and the log reads use, raise HTTP's
# 403 Forbidden / 401 Unauthorized; gRPC's PermissionDenied / Unauthenticated are their subclasses.
NOT_ALLOWED = (gexc.Forbidden, gexc.Unauthorized)
# The request itself refused (a filter, a name): gRPC's InvalidArgument is a BadRequest.
REFUSED = (gexc.BadRequest, gexc.NotFound)
LOGIN_HINT = "refresh your credentials: gcloud auth application-default login"


@dataclass(frozen=True)
class GoogleApi:
    """An API as the messages name it, its default endpoint, and the role the harness's reads need."""

    name: str
    endpoint: str
    role: str


RUN_ADMIN_API = GoogleApi("the Cloud Run Admin API", "run.googleapis.com", "roles/run.viewer")
LOGGING_API = GoogleApi("Cloud Logging", "logging.googleapis.com", "roles/logging.viewer")
MONITORING_API = GoogleApi("Cloud Monitoring", "monitoring.googleapis.com", "roles/monitoring.viewer")


def is_throttled(exc: BaseException) -> bool:
    """A quota refusal: HTTP 429, or gRPC ``RESOURCE_EXHAUSTED`` (a subclass), also behind a retry
    that gave up on it."""
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        return is_throttled(exc.cause)
    return isinstance(exc, gexc.TooManyRequests)


def api_error(
    exc: BaseException,
    api: GoogleApi,
    *,
    what: str,
    endpoint: str = "",
    where: str = "",
    not_found: str = "",
    permission: str = "",
) -> SmokeError:
    """``exc``, raised while the harness tried to ``what`` (a verb phrase: "read the service") through
    ``api``, as one line. ``endpoint``: the configured one ("" for Google's); ``where``: the project
    and region, when the message should name them; ``not_found``: the whole message for a 404, naming
    what is missing and where to look; ``permission``: what to grant, when it is more than the API's
    read role (an update)."""
    in_where = f" in {where}" if where else ""
    if isinstance(exc, gexc.NotFound) and not_found:
        return SmokeError(not_found)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return SmokeError(
            f"cannot authenticate to {api.name}{' for ' + where if where else ''}: {type(exc).__name__}; "
            + LOGIN_HINT
        )
    if isinstance(exc, NOT_ALLOWED):
        grant = permission or f"grant {api.role} to the identity running the suite"
        return SmokeError(f"not allowed to {what}{in_where}: {grant}")
    if isinstance(exc, REFUSED):
        return SmokeError(
            f"cannot {what}{in_where}: {api.name} refused the request: {getattr(exc, 'message', exc)}"
        )
    return SmokeError(
        f"cannot {what} through {api.name} at {endpoint or api.endpoint}: {type(exc).__name__}: {exc}"
    )
