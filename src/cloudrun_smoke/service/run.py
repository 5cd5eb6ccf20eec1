"""The identity of one smoke run: its id, its users and session, what it created."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from cloudrun_smoke.service.users import SmokeUser
from cloudrun_smoke.timeutil import utcnow


@dataclass
class SmokeRun:
    run_id: str
    user_id: str
    session_id: str
    started_at: datetime
    users: list[SmokeUser] = field(default_factory=list)
    cleanup_problems: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, user_prefix: str) -> SmokeRun:
        started = utcnow()
        run_id = f"{started:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        return cls(run_id, f"{user_prefix}{run_id}", f"smoke-session-{run_id}", started)

    @property
    def thread_ids(self) -> list[str]:
        return [t for user in self.users for t in user.threads]

    @property
    def user_ids(self) -> list[str]:
        return sorted({user.user_id for user in self.users} | {self.user_id})
