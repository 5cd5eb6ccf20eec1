"""How the suite authenticates to the service: the headers of one auth mode.

Tokens and passwords are read from environment variables named in the configuration, never from the
file, and never appear in a message: errors name the variable, not its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp import iam as cloud_run_iam
from cloudrun_smoke.service import redaction
from cloudrun_smoke.service.http import ServiceClient, ServiceUnreachable

LOGIN = "/api/auth/login"


def _secret(environ: Mapping[str, str], variable: str, what: str, env: Environment) -> str:
    value = environ.get(variable, "").strip()
    if not value:
        raise SmokeError(
            f"auth mode {env.auth!r} for environment {env.name!r} needs {what} in ${variable}: "
            f"export {variable}=... (e.g. from your CI's secret store)"
        )
    redaction.register(value)
    return value


def login_token(env: Environment, service: ServiceClient, environ: Mapping[str, str]) -> str:
    """The app's own JWT from ``POST /api/auth/login``; the password never leaves this function.

    Sent by the run's own client: the login carries the run's markers (``X-Smoke-Run-Id``, the
    User-Agent) and the invoker's token like every other request, and is a write that is never
    resent once the service may have processed it."""
    try:
        email = _secret(environ, env.login_email_env, "the smoke account's e-mail", env)
        password = _secret(environ, env.login_password_env, "the smoke account's password", env)
        response = service.post(LOGIN, {"email": email, "password": password})
    except ServiceUnreachable as e:
        raise SmokeError(f"login failed: {e}") from None
    finally:
        service.close()
    token = None
    if response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = (
            body.get("token") or body.get("access_token") or body.get("id_token")
            if isinstance(body, dict)
            else None
        )
    if not isinstance(token, str) or not token:
        iam = cloud_run_iam.explain(response)
        raise SmokeError(
            f"login as ${env.login_email_env} at {service.base_url}{LOGIN} was refused "
            f"(HTTP {response.status_code}); "
            + (iam if iam else f"check the account and ${env.login_password_env}")
        )
    redaction.register(token)
    return token


def id_token(env: Environment, audience: str) -> str:
    """A Google-signed ID token for Cloud Run IAM (``roles/run.invoker``)."""
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.id_token

    request = google.auth.transport.requests.Request()
    try:
        if env.impersonate_service_account:
            import google.auth
            from google.auth import impersonated_credentials

            source, _ = google.auth.default()
            target = impersonated_credentials.Credentials(
                source_credentials=source,
                target_principal=env.impersonate_service_account,
                target_scopes=["https://www.googleapis.com/auth/cloud-platform"],
            )
            creds = impersonated_credentials.IDTokenCredentials(
                target, target_audience=audience, include_email=True
            )
            creds.refresh(request)
            return str(creds.token)
        return str(google.oauth2.id_token.fetch_id_token(request, audience))
    except google.auth.exceptions.GoogleAuthError as e:
        raise SmokeError(
            f"no ID token for {audience} ({type(e).__name__}): set GOOGLE_APPLICATION_CREDENTIALS to a "
            "service-account key (or impersonated-service-account) file, run on Google Cloud, or set "
            f"impersonate_service_account in [env.{env.name}]; user credentials and workload identity "
            'federation cannot mint ID tokens themselves (or use auth = "bearer" with a token from CI)'
        ) from None


def id_token_audience(env: Environment, service_url: str, url: str = "") -> str:
    """The audience of the ID token Cloud Run IAM checks: ``id_token_audience`` when configured (a
    custom audience set on the service), else the service's own URL, also when the suite calls a tag
    URL or a ``--service-url``: "The default Google-generated URL always remains as an accepted audience
    value" (https://cloud.google.com/run/docs/configuring/custom-audiences); Google documents no tag URL
    as an audience. ``url`` is the fallback when no service URL is known."""
    return env.id_token_audience or service_url or url


def dev_bypass_headers(user_id: str, session_id: str) -> dict[str, str]:
    """The application's dev bypass: who the caller claims to be, with no token."""
    return {"x-dev-bypass": "1", "x-user-id": user_id, "x-session-id": session_id}


def auth_headers(
    env: Environment,
    user_id: str,
    session_id: str,
    environ: Mapping[str, str] | None = None,
    base_url: str = "",
    audience: str = "",
    login_via: ServiceClient | None = None,
    mode: str = "",
) -> dict[str, str]:
    """The application's own auth for one user, in ``mode`` (default ``env.auth``). ``audience``: of
    an ID token (see ``id_token_audience``); ``login_via``: the client the login is sent with (the
    run's markers and Cloud Run IAM's headers; it is closed after); without it, a bare client for
    ``base_url``."""
    environ = os.environ if environ is None else environ
    mode = mode or env.auth
    if mode == "none":
        return {}
    if mode == "dev-bypass":
        return dev_bypass_headers(user_id, session_id)
    if mode == "bearer":
        token = _secret(environ, env.bearer_token_env or "SMOKE_BEARER_TOKEN", "a token", env)
        return {"Authorization": f"Bearer {token}"}
    if mode == "login":
        service = login_via or ServiceClient(base_url, {}, timeout=env.http_timeout)
        return {"Authorization": f"Bearer {login_token(env, service, environ)}"}
    if mode == "id-token":
        return {"Authorization": f"Bearer {id_token(env, audience or env.id_token_audience or base_url)}"}
    raise SmokeError(f"auth mode {mode!r} is not supported")


def request_headers(
    env: Environment,
    user_id: str,
    session_id: str,
    *,
    url: str,
    invoker: Mapping[str, str],
    audience: str = "",
    run_id: str = "",
    mode: str = "",
) -> dict[str, str]:
    """Every auth header a request of one user carries: the application's own (``mode``, default
    ``env.auth``, in ``Authorization``) and Cloud Run IAM's (``invoker``, see ``invoker_headers``),
    which stays in ``X-Serverless-Authorization`` so that the two never overwrite each other.

    A login is itself a request of the run: it is sent to ``url`` with the run's id and the invoker's
    token. ``audience``: of an application ID token (see ``id_token_audience``)."""
    login_via = (
        ServiceClient(url, invoker, run_id, timeout=env.http_timeout)
        if (mode or env.auth) == "login"
        else None
    )
    own = auth_headers(
        env, user_id, session_id, base_url=url, audience=audience, login_via=login_via, mode=mode
    )
    return {**own, **invoker}


def invoker_headers(env: Environment, audience: str) -> dict[str, str]:
    """Cloud Run IAM for a private service, beside the application's own auth: the ID token goes in
    ``X-Serverless-Authorization`` so that ``Authorization`` stays the application's. ``audience``:
    see ``id_token_audience``."""
    if env.invoker != "id-token":
        return {}
    return {"X-Serverless-Authorization": f"Bearer {id_token(env, audience)}"}
