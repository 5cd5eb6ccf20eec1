"""The release layer's one door to the Cloud Run Admin API: every call goes through
:func:`call_admin_api`, so a failure is always one line saying what to do, never a traceback or a token.

Google's errors are turned into ours as discovery's are
(:func:`cloudrun_smoke.gcp.discovery.run_admin_api_error`, through ``gcp.errors``); only what is
particular to changing a service is said here: an update that lost a race with another change, an
operation that did not finish in time, and the ``local up`` hint when the API cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.api_core import exceptions as gexc

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.discovery import run_admin_api_error
from cloudrun_smoke.gcp.errors import GOOGLE_ERRORS, RUN_ADMIN_API

API_TIMEOUT = 30.0  # seconds per read call: a hung API must not hang a pipeline's failure path

# What the identity running a rollback needs, beyond the Admin API's read role.
PERMISSION = (
    "planning needs roles/run.viewer, applying roles/run.developer (run.services.update) for the "
    "identity running the command"
)

T = TypeVar("T")


def call_admin_api(env: Environment, what: str, fn: Callable[[], T], on_timeout: str = "") -> T:
    """One Admin API call; every failure becomes one line naming what to do (no traceback, no token)."""
    try:
        return fn()
    except TimeoutError as e:  # also an OSError: waiting on an operation ran out of time
        raise SmokeError(on_timeout) if on_timeout else _unreachable(env, what, e) from None
    except (gexc.Conflict, gexc.Aborted, gexc.FailedPrecondition) as e:
        raise SmokeError(
            f"cannot {what}: the service changed since the plan or another update is running "
            f"({e.code} {e.message}); run the command again for a fresh plan"
        ) from None
    except (gexc.ServiceUnavailable, gexc.RetryError, gexc.DeadlineExceeded, OSError) as e:
        raise _unreachable(env, what, e) from None
    except GOOGLE_ERRORS as e:
        raise run_admin_api_error(env, what, e, permission=PERMISSION) from None


def _unreachable(env: Environment, what: str, error: Exception) -> SmokeError:
    endpoint = env.run_api_endpoint or RUN_ADMIN_API.endpoint
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
