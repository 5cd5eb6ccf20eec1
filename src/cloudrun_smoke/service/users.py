"""The users a run acts as, and everything each of them created, so teardown can remove it all.

Where the auth mode lets the suite choose the user (dev-bypass, no auth), every run, and every
scenario within it, acts as its own user (prefix + run id + scenario): batch counts are then exactly
attributable and concurrent scenarios cannot disturb each other. Where the identity is fixed (login,
bearer, id-token), all scenarios share it, counts are lower bounds, and cleanup removes only the
run's own threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cloudrun_smoke.service import contract, interrupts
from cloudrun_smoke.service.http import ServiceClient

# Given the threads whose archiving may have set the service's queue to work, waits until that work
# has ended (bounded) and returns what it could not confirm, for the run summary.
Settle = Callable[[list[str]], list[str]]


@dataclass
class SmokeUser:
    user_id: str
    client: ServiceClient
    per_run: bool  # the user exists only for this run: its whole memory may be cleared at the end
    threads: list[str] = field(default_factory=list)
    created_by: dict[str, str] = field(default_factory=dict)  # thread id -> trace of the creating request

    def new_thread(self, title: str, *messages: str) -> str:
        """Create a thread (recorded for cleanup at once) and post the messages as the user."""
        with interrupts.deferred():  # Ctrl-C now would leave a thread nobody knows the id of
            thread_id = str(contract.create_thread(self.client, title)["id"])
            self.threads.append(thread_id)
        self.created_by[thread_id] = self.client.timings[-1].trace
        for message in messages:
            contract.add_message(self.client, thread_id, message)
        return thread_id

    def archive_requested(self) -> list[str]:
        """The user's threads whose archiving may have set the service's queue to work: those with a
        PATCH sent (answered, or cut short by Ctrl-C or a timeout), unless the thread, asked now, says
        it is not archived (a PATCH that never reached the service, or an archive the service answered
        but did not make). Else teardown would wait its whole grace for a consolidation that never
        started (a Ctrl-C run once spent 20 s so). Called before the threads are deleted."""
        sent = {t.path for t in self.client.timings if t.method == "PATCH"}
        return [t for t in self.threads if contract.thread_path(t) in sent and not self._says_not_archived(t)]

    def _says_not_archived(self, thread_id: str) -> bool:
        try:
            thread = contract.get_thread(self.client, thread_id)["thread"]
            return not contract.is_archived(thread.get("archived"))
        except Exception:  # no answer is no proof: assume the archive took effect
            return False

    def delete_threads(self) -> list[str]:
        """Delete the user's threads (soft delete is fine); what could not be removed, never raising."""
        problems = []
        for thread_id in self.threads:
            try:
                status = contract.delete_thread(self.client, thread_id)
            except Exception as e:  # cleanup goes on; the summary names what is left
                problems.append(f"thread {thread_id}: {type(e).__name__}: {e}")
                continue
            if status not in (200, 202, 204, 404):
                problems.append(f"thread {thread_id}: DELETE answered {status}")
        return problems

    @property
    def owns_memory(self) -> bool:
        """A per-run user that created something: its memory is the run's to clear (a fixed identity's
        memory is not, and a read-only run created nothing)."""
        return self.per_run and bool(self.threads)

    def clear_memory(self) -> list[str]:
        try:
            status = contract.clear_memory(self.client)
        except Exception as e:
            return [f"memory of {self.user_id}: {type(e).__name__}: {e}"]
        if status not in (200, 202, 204):
            return [f"memory of {self.user_id}: DELETE /api/memory/clear answered {status}"]
        return []


def clean_up(users: list[SmokeUser], settle: Settle | None = None) -> list[str]:
    """Delete every user's threads and clear the memory of per-run users, once ``settle`` says the
    consolidations the run set off have ended (else they would write to a memory already cleared).

    All users' consolidations are waited for at once, before any memory is cleared: the wait lasts as
    long as the slowest one, not the sum of one wait per user. Returns what could not be removed, for
    the run summary; never raises an Exception.
    """
    owners = [user for user in users if user.owns_memory]
    archived = [t for user in owners for t in user.archive_requested()] if settle is not None else []
    problems = [p for user in users for p in user.delete_threads()]
    if settle is not None and owners:
        problems += settle(archived)
    return problems + [p for user in owners for p in user.clear_memory()]
