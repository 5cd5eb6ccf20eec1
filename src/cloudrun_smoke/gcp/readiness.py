"""Whether a Cloud Run service or revision is ready: the one reading of a ``Ready`` condition, for
discovery (the service and the revision under test) and the rollback plan (which revisions may take
traffic), so that a change to what "ready" means is made once.

Cloud Run Admin API v2 (RPC reference ``google.cloud.run.v2``,
https://cloud.google.com/run/docs/reference/rpc/google.cloud.run.v2, messages ``Revision``, ``Service``,
``Condition`` and ``Condition.State``): a revision reports its readiness, and why it did not reach a
serving state, in ``Revision.conditions``; a service in ``Service.terminal_condition``. The condition of
type ``Ready`` counts: ready in state ``CONDITION_SUCCEEDED`` (reconciliation completed successfully),
not ready in ``CONDITION_FAILED``, ``CONDITION_PENDING`` or ``CONDITION_RECONCILING``, nor when no
``Ready`` condition is reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def readiness(conditions: Iterable[Any]) -> tuple[bool, str]:
    """The ``Ready`` condition among ``conditions`` (run_v2 ``Condition``): (succeeded, its message)."""
    from google.cloud.run_v2 import Condition

    for c in conditions:
        if c.type_ == "Ready":
            return c.state == Condition.State.CONDITION_SUCCEEDED, c.message
    return False, "no Ready condition reported"
