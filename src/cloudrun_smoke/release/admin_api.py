"""The release layer's one door to the Cloud Run Admin API: every call goes through
:func:`call_admin_api`, so a failure is always one line saying what to do, never a traceback or a token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError

API_TIMEOUT = 30.0  # seconds per read call: a hung API must not hang a pipeline's failure path

T = TypeVar("T")


def call_admin_api(env: Environment, what: str, fn: Callable[[], T], on_timeout: str = "") -> T:
    """One Admin API call; every failure becomes one line naming what to do (no traceback, no token)."""
    where = f"project {env.project!r}, region {env.region!r}"
    try:
        return fn()
    except TimeoutError as e:  # also an OSError: waiting on an operation ran out of time
        raise SmokeError(on_timeout) if on_timeout else _unreachable(env, what, e) from None
    except gexc.NotFound:
        raise SmokeError(
            f"Cloud Run service {env.service!r} not found in {where} ({env.source} [env.{env.name}]); "
            f"look: gcloud run services list --project {env.project} --region {env.region}"
        ) from None
    except (gexc.PermissionDenied, gexc.Unauthenticated):
        raise SmokeError(
            f"not allowed to {what} in {where}: planning needs roles/run.viewer, applying "
            "roles/run.developer (run.services.update) for the identity running the command"
        ) from None
    except auth_exceptions.GoogleAuthError as e:
        raise SmokeError(
            f"cannot authenticate to the Cloud Run Admin API for {where} ({type(e).__name__}): "
            "gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    except (gexc.Conflict, gexc.Aborted, gexc.FailedPrecondition) as e:
        raise SmokeError(
            f"cannot {what}: the service changed since the plan or another update is running "
            f"({e.code} {e.message}); run the command again for a fresh plan"
        ) from None
    except (gexc.ServiceUnavailable, gexc.RetryError, gexc.DeadlineExceeded, OSError) as e:
        raise _unreachable(env, what, e) from None
    except gexc.GoogleAPICallError as e:
        raise SmokeError(f"cannot {what}: {e.code} {e.message}") from None


def _unreachable(env: Environment, what: str, error: Exception) -> SmokeError:
    endpoint = env.run_api_endpoint or "run.googleapis.com"
    return SmokeError(
        f"cannot reach the Cloud Run Admin API at {endpoint} to {what} ({type(error).__name__})"
        + _local_hint(env)
    )


def _local_hint(env: Environment) -> str:
    if env.is_local:
        return (
            " (is `cloudrun-smoke local up` still running? SMOKE_RUN_API_ENDPOINT must be the one it printed)"
        )
    return ""
