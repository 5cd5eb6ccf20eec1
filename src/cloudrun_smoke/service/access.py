"""How the run reaches the service as one of its users: Cloud Run IAM's headers (a private service)
beside the application's own auth, and the run's users, each with its client, removed at the end."""

from __future__ import annotations

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.service import users
from cloudrun_smoke.service.auth import auth_headers, id_token_audience
from cloudrun_smoke.service.http import ServiceClient
from cloudrun_smoke.service.run import SmokeRun
from cloudrun_smoke.service.users import Settle, SmokeUser


class ServiceAccess:
    """The headers a user's requests carry: its own (``env.auth``) and the invoker's (``invoker``,
    minted once for the run: the token is for the service, not for a user)."""

    def __init__(
        self, env: Environment, url: str, service_url: str, invoker: dict[str, str], run_id: str = ""
    ) -> None:
        self.env = env
        self.url = url
        self.invoker = invoker
        self.run_id = run_id
        self.audience = id_token_audience(env, service_url, url)

    def headers_for(self, user_id: str, session_id: str) -> dict[str, str]:
        """Raises SmokeError when the user's auth cannot be had (credentials, login refused)."""
        login_via = (  # the login is a request of the run: its markers, the invoker's token
            ServiceClient(self.url, self.invoker, self.run_id, timeout=self.env.http_timeout)
            if self.env.auth == "login"
            else None
        )
        own = auth_headers(
            self.env, user_id, session_id, base_url=self.url, audience=self.audience, login_via=login_via
        )
        return {**own, **self.invoker}


class RunUsers:
    """``users(name)``: the user a scenario acts as, made once per name.

    Per scenario where the suite may choose users (dev-bypass, no auth), else the one fixed identity.
    """

    def __init__(self, access: ServiceAccess, run: SmokeRun) -> None:
        self.access = access
        self.run = run
        self.by_name: dict[str, SmokeUser] = {}

    def __call__(self, name: str = "") -> SmokeUser:
        env, run = self.access.env, self.run
        key = name if env.user_is_chosen_by_suite else ""
        if key not in self.by_name:
            user_id = run.user_id + (f"-{key}" if key else "")
            headers = self.access.headers_for(user_id, run.session_id)
            client = ServiceClient(self.access.url, headers, run.run_id, timeout=env.http_timeout)
            if self.by_name:
                client.timings = next(iter(self.by_name.values())).client.timings  # one timing log per run
            self.by_name[key] = SmokeUser(user_id, client, per_run=env.user_is_chosen_by_suite)
            run.users.append(self.by_name[key])
        return self.by_name[key]

    def remove_all(self, settle: Settle) -> None:
        """Everything each user created is removed (once ``settle`` says the queue is done); what could
        not be goes to the run's cleanup problems."""
        self.run.cleanup_problems.extend(users.clean_up(list(self.by_name.values()), settle))
        for each in self.by_name.values():
            each.client.close()
