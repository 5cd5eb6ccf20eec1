"""The window checks end to end: `pytest smoke/ --env local -m window` against the embedded stack,
through the real Monitoring (gRPC) and Logging (JSON) clients, after background traffic.

A healthy stack passes every window check and skips none; each window fault fails its own check with
the figure and the threshold in the message while its neighbours pass (or skip, when the broken figure
leaves them nothing to judge). Every check of smoke/test_window.py is proven so by at least one fault.
One stack per run.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.local.stack import stack_for
from cloudrun_smoke.local.traffic import run_background_traffic
from cloudrun_smoke.report.verdict import Figure
from cloudrun_smoke.waiting import wait_until
from helpers.ahead import AheadRun
from helpers.smoke_runs import ROOT, SuiteRun, run_window

CHECKS = {
    "5xx": "test_window.py::test_5xx_share",
    "latency": "test_window.py::test_request_latency_p95",
    "memory": "test_window.py::test_memory_utilization_peak",
    "cpu": "test_window.py::test_cpu_utilization_p95",
    "instances": "test_window.py::test_instance_count_within_bounds",
    "archive": "test_window.py::test_archive_latency_p50",
    "consolidated": "test_window.py::test_threads_consolidated",
    "failures": "test_window.py::test_consolidation_failure_rate",
    "queue": "test_window.py::test_queue_time_p95",
    "preferences": "test_window.py::test_preferences_saved",
}


def local_config(tmp_path: Path, settings: str) -> Path:
    """smoke.toml with ``key = value`` lines replaced or added in ``[env.local.stack]``, or in
    ``[env.local.SECTION]`` for ``SECTION.key = value`` (``window.latency_p95_ms = 500``)."""
    text = (ROOT / "smoke.toml").read_text()
    for setting in filter(None, settings.splitlines()):
        name, _, value = setting.partition("=")
        section, _, key = name.strip().rpartition(".")
        header, line = f"[env.local.{section or 'stack'}]\n", f"{key} = {value.strip()}"
        if header not in text:
            text += f"\n{header}"
        start = text.index(header) + len(header)
        end = text.find("\n[", start) + 1 or len(text)  # the table ends where the next one starts
        table, found = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", line, text[start:end], count=1)
        text = text[:start] + (table if found else f"{line}\n{table}") + text[end:]
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


def assert_only_fails(
    run: SuiteRun,
    failing: str,
    figure: str,
    message: tuple[str, ...],
    skipped: tuple[str, ...] = (),
) -> None:
    """``failing`` failed with its figure (value, threshold, samples: as recorded in the verdict) in the
    message; every other window check passed, but those of ``skipped``, which skipped for want of samples."""
    check = CHECKS[failing]
    assert run.outcomes.get(check) == "failure", f"{check} did not fail:\n{run.output}"
    recorded = [f for f in run.verdict.get("figures", []) if f["name"] == figure]
    assert recorded, f"no figure {figure!r} in the verdict: {run.verdict.get('figures')}"
    described = Figure(**recorded[-1]).describe()
    for part in (described, *message, " samples", "\n  window: ", "\n  look further: "):
        assert part in run.messages[check], f"{check}'s message lacks {part!r}:\n{run.messages[check]}"
    for name in skipped:
        assert run.outcomes.get(CHECKS[name]) == "skipped", f"{CHECKS[name]} did not skip:\n{run.output}"
        assert " 0 sample(s) in the window" in run.messages[CHECKS[name]], run.messages[CHECKS[name]]
    others = {k: run.outcomes.get(v) for k, v in CHECKS.items() if k != failing and k not in skipped}
    assert set(others.values()) == {"passed"}, f"neighbours of {check}: {others}\n{run.output}"
    assert "Traceback" not in run.output


def healthy_run(folder: Path, variant: str) -> SuiteRun:
    return run_window(folder, env={"SMOKE_LOCAL_FAULTS": variant})


@pytest.mark.slow
@pytest.mark.suite_run(plan=healthy_run)
@pytest.mark.parametrize("variant", ["", "json-logs"])
def test_a_healthy_stack_passes_every_window_check_and_skips_none(variant: str, suite_run: AheadRun) -> None:
    """Also when every line is JSON (``jsonPayload.message``) instead of text."""
    run = suite_run.run
    assert run.returncode == 0, run.output
    assert {k: run.outcomes.get(v) for k, v in CHECKS.items()} == dict.fromkeys(CHECKS, "passed"), run.output
    # The window checks and the regression checks only: no scenario, no other check. Without a baseline
    # revision (the stack deploys one only when -m names regression) the regression checks skip, saying so.
    regression = {k: v for k, v in run.outcomes.items() if k.startswith("test_regression.py::")}
    assert len(run.outcomes) == len(CHECKS) + len(regression) and len(regression) == 7, run.outcomes
    assert set(regression.values()) == {"skipped"}, run.output
    assert all("none was created before" in run.messages[k] for k in regression), run.messages
    # The cost: one ListTimeSeries call per metric figure, one page per kind of log entry.
    assert "window reads: ListTimeSeries calls: 5; entries:list pages: 2" in run.output, run.output
    cost = run.verdict["window"]  # the same cost in the JSON verdict, for a pipeline to keep
    assert (cost["list_time_series_calls"], cost["entries_list_pages"], cost["capped"]) == (5, 2, [])
    assert cost["start"] < cost["end"]
    figures = {f["name"]: f for f in run.verdict["figures"]}
    assert figures["5xx share"]["samples"] >= 100 and figures["consolidation failure rate"]["samples"] >= 40
    # Both intervals: the log figures end now, the Monitoring figures metric_delay (1 s + 1 s here) earlier.
    assert "\n  Monitoring figures: " in run.output and "metric_delay 2s before the end" in run.output
    assert cost["metrics_end"] < cost["end"] and not cost["metrics_skipped"]


MONITORING_CHECKS = ("5xx", "latency", "memory", "cpu", "instances")


def not_yet_visible_run(folder: Path, settings: str, reasons: dict[str, str]) -> SuiteRun:
    config = local_config(folder, "traffic_deadline = 10\n" + settings)
    return run_window(folder, f"--smoke-config={config}", env={"SMOKE_LOCAL_FAULTS": ""})


@pytest.mark.slow
@pytest.mark.suite_run(plan=not_yet_visible_run)
@pytest.mark.parametrize(
    ("settings", "reasons"),
    [
        # Right after a deploy: now − metric_delay is before the window's start; the log figures are judged.
        ("window.metric_delay = 3600", dict.fromkeys(MONITORING_CHECKS, "falls before the window's start")),
        # The emulator hides points for 2 min after sampling (Cloud Run: up to 180 s) and the window's
        # Monitoring figures end now: the whole local window looks empty, so nothing is judged.
        (
            "metric_delay = 120\nwindow.metric_delay = 0",
            {
                **dict.fromkeys(MONITORING_CHECKS[:4], " 0 sample(s) in the window"),
                "instances": "no instance_count",
            },
        ),
    ],
    ids=["after-a-deploy", "read-up-to-now"],
)
def test_monitoring_figures_not_yet_visible_are_skipped_not_judged(
    settings: str, reasons: dict[str, str], suite_run: AheadRun
) -> None:
    run = suite_run.run
    assert run.returncode == 0, run.output
    for name, reason in reasons.items():
        check = CHECKS[name]
        assert run.outcomes.get(check) == "skipped", f"{check} was judged:\n{run.output}"
        assert reason in run.messages[check], run.messages[check]
    logs = {k: run.outcomes.get(v) for k, v in CHECKS.items() if k not in MONITORING_CHECKS}
    assert set(logs.values()) == {"passed"}, f"log checks: {logs}\n{run.output}"
    skipped = "falls before" in reasons["5xx"]
    assert ("Monitoring figures skipped: now − metric_delay 1h" in run.output) == skipped, run.output
    assert bool(run.verdict["window"]["metrics_skipped"]) == skipped


class WindowFault(NamedTuple):
    fault: str  # SMOKE_LOCAL_FAULTS ("": none, the settings alone break the expectation)
    settings: str  # lines for local_config: a small traffic, a lowered threshold, an expectation
    failing: str  # the check (a key of CHECKS) that must fail, alone
    figure: str  # the name of its figure in the verdict
    message: tuple[str, ...]  # more text its failure message must hold
    skipped: tuple[str, ...] = ()  # neighbours left without a sample by the broken figure

    @property
    def id(self) -> str:
        return self.fault or self.settings.replace("\n", "; ")


FAULTS = [
    # A thread whose messages got a 500 consolidates nothing: the traffic would wait for it until its deadline.
    WindowFault(
        "stack:5xx-burst",
        "traffic_deadline = 10",
        "5xx",
        "5xx share",
        ("5xx share: ", "% (threshold 1 %) over", "answers 5xx"),
    ),
    # Only the reads are slowed: a delay on every request would also put the archive P50 (PATCH) over
    # its 200 ms. Healthy, the local P95 is 100-250 ms on a busy machine: 600 ms stays well above it.
    WindowFault(
        "slow-reads=800",
        "traffic_threads = 4\nwindow.latency_p95_ms = 600",
        "latency",
        "request latency P95",
        ("request latency P95: ", " ms (threshold 600 ms) over", "merged latency distribution"),
    ),
    # A 1-CPU revision with 3 users: healthy, the service peaks at 50-65 % of it while the traffic lasts
    # and idles after, so 85 % stands clear of it. The burner keeps two CPUs busy at normal priority for
    # as long as the revision runs: twice the revision's limit, so that on a 2-core machine where another
    # test takes a core (two workers), it still gets more than the limit (with one CPU, 99 % idle machine,
    # ~50 % busy one). 8 samples keep the window open a few seconds after the traffic.
    WindowFault(
        "cpu-burn=2",
        'stack.cpu = "1"\nexpect.cpu = "1"\ntraffic_users = 3\nwindow.min_metric_samples = 8\n'
        "window.cpu_p95_pct = 85",
        "cpu",
        "CPU utilization P95",
        ("CPU utilization P95: ", " % (threshold 85 %) over", "merged distribution"),
    ),
    # The stack runs one instance; the environment expects at least two (a deploy that lost its
    # --min-instances): the lowest count is below the minimum from the first period on.
    WindowFault(
        "",
        "expect.min_instances = 2",
        "instances",
        "instance count lowest",
        (
            "instance count lowest: 1 (threshold 2) over",
            "never reached 2",
            "below min_instances: [env.local.expect] min_instances 2, max_instances 10",
        ),
    ),
    WindowFault(
        "archive-slow=400", "", "archive", "archive latency P50", ("archive latency P50: 4", "renames")
    ),
    # Every queued consolidation hangs: nothing is consolidated, so there is no queue time to measure
    # and no consolidation to have saved preferences (both skip); the hung ones are pending, not failed.
    WindowFault(
        "consolidation-hangs",
        "traffic_deadline = 8",
        "consolidated",
        "threads consolidated",
        ("threads consolidated: 0 (threshold 0) over", "must be > 0", " pending"),
        skipped=("queue", "preferences"),
    ),
    WindowFault(
        "consolidation-fails-some",
        "traffic_deadline = 10",  # the failed threads are never consolidated: do not wait for them
        "failures",
        "consolidation failure rate",
        ("consolidation failure rate: ", "% (threshold 1 %) over", "2 failed of"),
    ),
    # 15 threads through 2 workers, each waiting 1 s first: the last waits about 7 s, the median 4 s.
    WindowFault(
        "queue-slow=1",
        "traffic_users = 3\ntraffic_threads = 5\nslo.queue_p95_s = 3",
        "queue",
        "queue time P95",
        ("queue time P95: ", " s (threshold 3 s) over", "paired by thread id"),
    ),
    WindowFault(
        "preferences-not-persisted",
        "",
        "preferences",
        "preferences saved",
        ("preferences saved: 0 (threshold 0) over", "must be > 0", " 0 save lines after "),
    ),
]
# Window checks proven by a test of their own rather than a row of FAULTS.
DEDICATED = {"test_memory_utilization_peak": "test_memory_creep_fails_the_memory_check"}


def test_every_window_check_is_proven_by_a_fault() -> None:
    tree = ast.parse((ROOT / "smoke" / "test_window.py").read_text())
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    checks = [n.name for n in tree.body if isinstance(n, functions) and n.name.startswith("test_")]
    assert sorted(f"test_window.py::{c}" for c in checks) == sorted(CHECKS.values()), "CHECKS is out of date"
    proven = {CHECKS[f.failing].partition("::")[2] for f in FAULTS} | set(DEDICATED)
    unproven = [c for c in checks if c not in proven]
    assert not unproven, f"window checks that no window fault proves: {', '.join(unproven)}"
    assert all(callable(globals().get(test)) for test in DEDICATED.values()), DEDICATED


def window_fault_run(folder: Path, case: WindowFault) -> SuiteRun:
    config = local_config(folder, case.settings)
    return run_window(folder, f"--smoke-config={config}", env={"SMOKE_LOCAL_FAULTS": case.fault})


def burns_cpu(case: WindowFault) -> bool:
    """A CPU burn is judged against the revision's limit: other runs beside it would take the CPUs it
    burns (the burner's share of two cores fell below the 85 % threshold with four runs in flight)."""
    return "cpu-burn" in case.fault


@pytest.mark.slow
@pytest.mark.suite_run(plan=window_fault_run, alone=burns_cpu)
@pytest.mark.parametrize("case", FAULTS, ids=[f.id for f in FAULTS])
def test_a_window_fault_fails_its_check(case: WindowFault, suite_run: AheadRun) -> None:
    run = suite_run.run
    assert run.returncode == 1, run.output
    assert_only_fails(run, case.failing, case.figure, case.message, case.skipped)


@pytest.mark.slow
def test_memory_creep_fails_the_memory_check(tmp_path: Path) -> None:
    """A leak takes time to show: the suite runs against a stack (its endpoints given, as for
    `cloudrun-smoke local up`) once the revision's memory has crept past the threshold."""
    env = load_config(ROOT / "smoke.toml").environment(
        "local", environ={"SMOKE_LOCAL_FAULTS": "memory-creep"}
    )
    with stack_for(env) as stack:
        run_background_traffic(stack.service_url, deadline=30)
        revision = stack.serving_revision

        def crept_at() -> float | None:
            return min(
                (u.time for u in stack.metrics.utilizations() if u.revision == revision and u.memory >= 0.85),
                default=None,
            )

        crossed = wait_until(crept_at, timeout=60, what="memory utilization past 85 %", interval=0.5)
        # The run's Monitoring figures end metric_delay before now: the peak must be older than that.
        wait_until(
            lambda: time.time() >= crossed + env.metric_delay + 1.0 or None,
            timeout=env.metric_delay + 10,
            what="the memory peak to be inside the Monitoring figures' interval",
            interval=0.2,
        )
        run = run_window(
            tmp_path,
            env={
                "SMOKE_RUN_API_ENDPOINT": stack.run_api_endpoint,
                "SMOKE_LOGGING_API_ENDPOINT": stack.logging_api_endpoint,
                "SMOKE_MONITORING_API_ENDPOINT": stack.monitoring_api_endpoint,
            },
        )
    assert run.returncode == 1, run.output
    assert_only_fails(
        run,
        "memory",
        "memory utilization max",
        ("memory utilization max: ", "% (threshold 80 %) over", "highest occupied"),
    )
