"""The identity of one smoke run: its id, its own user and session, what it created."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from cloudrun_smoke.timeutil import utcnow


@dataclass
class SmokeRun:
    run_id: str
    user_id: str
    session_id: str
    started_at: datetime
    created_threads: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, user_prefix: str) -> SmokeRun:
        started = utcnow()
        run_id = f"{started:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        return cls(run_id, f"{user_prefix}{run_id}", f"smoke-session-{run_id}", started)
