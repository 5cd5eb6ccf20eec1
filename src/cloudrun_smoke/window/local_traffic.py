"""Filling a local window: on an embedded stack the window would be empty, so simulated users run
once first, and the window ends after their last log line and metric sample."""

from __future__ import annotations

import time
from typing import Any

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.gcp.discovery import Target
from cloudrun_smoke.service.auth import id_token_audience, invoker_headers, request_headers
from cloudrun_smoke.waiting import wait_until


def run_traffic(env: Environment, target: Target, canary: bool = False) -> str:
    """Simulated users act on the service once; the traffic's summary. Raises SmokeError. They call the
    URL under test (a no-traffic candidate's tag URL), but for a canary: users reach the service's URL,
    and its traffic split sends them to both revisions."""
    url = target.service_url if canary and target.service_url else target.url
    return traffic_at(env, url, target.service_url)


def traffic_at(env: Environment, url: str, service_url: str) -> str:
    """Simulated users act once through ``url`` (``service_url``: the token audience of a private service)."""
    from cloudrun_smoke.local.traffic import run_background_traffic

    assert env.stack is not None
    audience = id_token_audience(env, service_url, url)
    invoker = invoker_headers(env, audience)
    summary = run_background_traffic(
        url,
        users=env.stack.traffic_users,
        threads_per_user=env.stack.traffic_threads,
        deadline=env.stack.traffic_deadline,
        headers_for=lambda user_id: request_headers(
            env, user_id, f"session-{user_id}", url=url, invoker=invoker, audience=audience
        ),
    )
    return summary.describe()


def settle_after_traffic(env: Environment, target: Target, stack: Any) -> None:
    """Raises WaitTimeout when the stack never shows all of the traffic."""
    minimum = max(1, env.window.min_metric_samples)
    _settle(stack, target.revision, minimum, env.metric_delay, env.log_deadline)


def _settle(stack: Any, revision: str, samples: int, metric_delay: float, timeout: float) -> None:
    """Until every log line written so far is visible and the instance sampler has measured the
    revision ``samples`` times, once after the traffic, ``metric_delay`` ago: the window then ends after
    the traffic's last line, and its Monitoring figures after its last sample, not in the middle of
    their delays (a few seconds are most of a local window)."""
    store, recorder = stack.store, stack.metrics
    # A metric_delay too long to wait for here leaves the Monitoring figures short of the traffic's
    # end, or skipped (see Window.metrics_skipped): not waited for.
    lag = metric_delay if metric_delay < timeout / 2 else 0.0
    last_line = max((e.visible_at for e in store), default=0.0)
    traffic_end = time.time()

    def settled() -> bool | None:
        measured = [u.time for u in recorder.utilizations() if u.revision == revision and u.cpu is not None]
        visible = [t for t in measured if t < time.time() - lag]  # inside the Monitoring figures' interval
        done = (
            store.now() >= last_line and len(visible) >= samples and max(visible, default=0.0) > traffic_end
        )
        return True if done else None

    wait_until(settled, timeout=timeout, what="the traffic's log lines and metric samples", interval=0.2)
