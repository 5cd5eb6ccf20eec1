"""How the suite authenticates to the service: the headers of one auth mode.

Tokens are read from environment variables named in the configuration, never from the file, and
never appear in a message: errors name the variable, not its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cloudrun_smoke.config import Environment
from cloudrun_smoke.errors import SmokeError


def auth_headers(
    env: Environment, user_id: str, session_id: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    if env.auth == "none":
        return {}
    if env.auth == "dev-bypass":
        return {"x-dev-bypass": "1", "x-user-id": user_id, "x-session-id": session_id}
    if env.auth == "bearer":
        variable = env.bearer_token_env or "SMOKE_BEARER_TOKEN"
        token = environ.get(variable, "").strip()
        if not token:
            raise SmokeError(
                f"auth mode 'bearer' for environment {env.name!r} needs a token in ${variable}: "
                f"export {variable}=... (e.g. from your CI's auth step)"
            )
        return {"Authorization": f"Bearer {token}"}
    raise SmokeError(f"auth mode {env.auth!r} is not supported")
