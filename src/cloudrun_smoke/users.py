"""The users a run acts as, and everything each of them created, so teardown can remove it all.

Where the auth mode lets the suite choose the user (dev-bypass, no auth), every run, and every
scenario within it, acts as its own user (prefix + run id + scenario): batch counts are then exactly
attributable and concurrent scenarios cannot disturb each other. Where the identity is fixed (login,
bearer, id-token), all scenarios share it, counts are lower bounds, and cleanup removes only the
run's own threads.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from cloudrun_smoke import contract
from cloudrun_smoke.http import ServiceClient


@dataclass
class SmokeUser:
    user_id: str
    client: ServiceClient
    per_run: bool  # the user exists only for this run: its whole memory may be cleared at the end
    threads: list[str] = field(default_factory=list)
    created_by: dict[str, str] = field(default_factory=dict)  # thread id -> trace of the creating request

    def new_thread(self, title: str, *messages: str) -> str:
        """Create a thread (recorded for cleanup at once) and post the messages as the user."""
        thread_id = str(contract.create_thread(self.client, title)["id"])
        self.threads.append(thread_id)
        self.created_by[thread_id] = self.client.timings[-1].trace
        for message in messages:
            contract.add_message(self.client, thread_id, message)
        return thread_id

    def clean_up(self) -> list[str]:
        """Delete the user's threads (soft delete is fine) and, for a per-run user, clear its memory.

        Returns what could not be removed, for the run summary; never raises.
        """
        problems = []
        for thread_id in self.threads:
            try:
                status = contract.delete_thread(self.client, thread_id)
            except Exception as e:  # cleanup goes on; the summary names what is left
                problems.append(f"thread {thread_id}: {type(e).__name__}: {e}")
                continue
            if status not in (200, 202, 204, 404):
                problems.append(f"thread {thread_id}: DELETE answered {status}")
        if self.per_run and self.threads:  # a user that created nothing has nothing to clear (read-only runs)
            with contextlib.suppress(Exception):
                status = contract.clear_memory(self.client)
                if status not in (200, 202, 204):
                    problems.append(f"memory of {self.user_id}: DELETE /api/memory/clear answered {status}")
        return problems
