"""The run's users: made once per name as a scenario asks for them, and everything each one created
removed at the end."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.service import users
from cloudrun_smoke.service.auth import request_headers
from cloudrun_smoke.service.http import ServiceClient
from cloudrun_smoke.service.run import SmokeRun
from cloudrun_smoke.service.users import Settle, SmokeUser


class RunUsers:
    """``run_users(name)``: the user a scenario acts as at ``url``, with the invoker's headers.

    Per scenario where the suite may choose users (dev-bypass, no auth), else the one fixed identity.
    """

    def __init__(
        self, env: Environment, run: SmokeRun, *, url: str, invoker: Mapping[str, str], audience: str
    ) -> None:
        self.env = env
        self.run = run
        self.url = url
        self.invoker = invoker
        self.audience = audience
        self.by_name: dict[str, SmokeUser] = {}
        self._lock = threading.Lock()  # scenarios ask for their users at once

    def __call__(self, name: str = "") -> SmokeUser:
        """Raises SmokeError when the user's auth cannot be had (credentials, login refused)."""
        with self._lock:
            return self._user(name)

    def _user(self, name: str) -> SmokeUser:
        env, run = self.env, self.run
        key = name if env.user_is_chosen_by_suite else ""
        if key not in self.by_name:
            user_id = run.user_id + (f"-{key}" if key else "")
            headers = request_headers(
                env,
                user_id,
                run.session_id,
                url=self.url,
                invoker=self.invoker,
                audience=self.audience,
                run_id=run.run_id,
            )
            client = ServiceClient(self.url, headers, run.run_id, timeout=env.http_timeout)
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
