"""The gate's sensitivity: each fault switch makes the intended check fail, with a message naming the
cause, while the checks unrelated to it pass.

Each row runs `pytest smoke/ --env local` (the checks the fault concerns, plus neighbours that must
stay green) against a stack with the fault, and judges the JUnit XML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.ahead import AheadRun
from helpers.catalogue import (
    ARCHIVE_AGAIN,
    ARCHIVING,
    BATCH_COUNTS,
    BATCH_DUE,
    BATCH_LIMIT,
    BATCH_LOG,
    BATCH_SECOND,
    CATALOGUE,
    CONSOLIDATED_AT,
    CPU_IDLE,
    HEALTH,
    NEIGHBOUR_RATE,
    RECALL,
    Row,
)
from helpers.smoke_runs import ROOT, SuiteRun, run_smoke


def row_run(folder: Path, row: Row) -> SuiteRun:
    env = {"SMOKE_LOCAL_FAULTS": row.fault, **dict(row.environ)}
    if row.neighbours:
        env["SMOKE_LOCAL_NEIGHBOURS"] = str(row.neighbours)
    config = (f"--smoke-config={stats_config(folder)}",) if row.stats else ()
    return run_smoke(folder, "-q", "--env", "local", "-k", row.select, *config, *row.args, env=env)


@pytest.mark.slow
@pytest.mark.suite_run(plan=row_run)
@pytest.mark.parametrize("row", CATALOGUE, ids=[r.name for r in CATALOGUE])
def test_fault_is_caught_by_its_check(row: Row, suite_run: AheadRun) -> None:
    run = suite_run.run
    out = run.output
    assert run.returncode == 1, out
    outcomes = run.outcomes
    outcome, message = outcomes[row.failing], run.messages.get(row.failing, "")
    assert outcome in ("failure", "error"), f"{row.failing} did not fail under {row.fault}:\n{out}"
    for part in row.message:
        assert part in message, f"{row.failing}'s message lacks {part!r}:\n{message}"
    if row.message_any:
        assert any(part in message for part in row.message_any), f"{row.failing}'s message:\n{message}"
    for check in row.passing:
        assert outcomes[check] == "passed", (
            f"{check} should pass under {row.fault}: {run.messages.get(check)}"
        )
    if row.settles:
        assert run.verdict["run"]["cleanup_problems"] == [], run.verdict["run"]
    assert "Traceback" not in out


# -- specificity: behaviours the contract allows pass everything -------------------------------------
VARIANTS = ["archived-bool", "hard-delete", "json-logs", "slow-start", "transient-503"]
# Cloud Logging misbehaving within what Google documents: the gate rides through, it does not fail.
# (stack:short-pages too: tests/e2e/test_smoke_suite.py runs the whole suite under it and judges its verdict.)
LOGGING_CONDITIONS = ["stack:logging-429", "stack:heavy-jitter", "stack:flaky-logging"]


def variant_run(folder: Path, variant: str) -> SuiteRun:
    return run_smoke(folder, "-q", "--env", "local", env={"SMOKE_LOCAL_FAULTS": variant})


@pytest.mark.slow
@pytest.mark.suite_run(plan=variant_run)
@pytest.mark.parametrize("variant", VARIANTS + LOGGING_CONDITIONS)
def test_a_correct_variant_passes_every_check(variant: str, suite_run: AheadRun) -> None:
    run = suite_run.run
    failed = {k: run.messages.get(k, "") for k, v in run.outcomes.items() if v in ("failure", "error")}
    assert run.returncode == 0 and not failed, f"{variant} is allowed by the contract: {failed}\n{run.output}"


def failing_neighbours_run(folder: Path) -> SuiteRun:
    env = {"SMOKE_LOCAL_FAULTS": "neighbours-fail", "SMOKE_LOCAL_NEIGHBOURS": str(NEIGHBOUR_RATE)}
    return run_smoke(folder, "-q", "--env", "local", env=env)


@pytest.mark.slow
@pytest.mark.suite_run(plan=failing_neighbours_run)
def test_a_healthy_revision_beside_failing_neighbours_passes(suite_run: AheadRun) -> None:
    """Other users' failed consolidations and saves, in forms that name nobody, fall inside the run's
    window: every check passes, and the lines are reported beside the verdict, never in it."""
    run = suite_run.run
    failed = {k: run.messages.get(k, "") for k, v in run.outcomes.items() if v in ("failure", "error")}
    assert run.returncode == 0 and not failed, f"failing neighbours failed the run: {failed}\n{run.output}"
    assert run.verdict["verdict"] == "pass"
    beside = run.verdict["unattributed"]
    failures = [u["line"] for u in beside if u["kind"] == "failure"]
    assert any("Task consolidate_thread failed" in line or "Vectorisation" in line for line in failures), (
        beside
    )
    unconfirmed = [u for u in beside if u["kind"] == "unconfirmed"]
    assert [u["check"] for u in unconfirmed] == ["smoke/test_preferences.py::test_preferences_are_persisted"]
    assert "preferences_in_stats = false" in unconfirmed[0]["note"]
    assert "attributed by time, unconfirmed" in run.output
    assert "names nobody, not counted on its own: failure line naming nobody" in run.output
    assert re.search(r"neighbours: 3 other users archived \d+ threads", run.output), run.output


def stats_config(tmp_path: Path) -> Path:
    text = (
        (ROOT / "smoke.toml")
        .read_text()
        .replace("preferences_in_stats = false", "preferences_in_stats = true", 1)
    )
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


def preferences_run(folder: Path, faults: str, expected: str) -> SuiteRun:
    config = f"--smoke-config={stats_config(folder)}"
    args = ("-q", "--env", "local", config, "--log-deadline", "8", "-k", "preferences")
    return run_smoke(folder, *args, env={"SMOKE_LOCAL_FAULTS": faults})


@pytest.mark.slow
@pytest.mark.suite_run(plan=preferences_run)
@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ("preferences-in-stats", ""),
        (
            "preferences-in-stats,preferences-no-dedup",
            "de-duplication (same user + same text -> one document) does not hold",
        ),
        # The persistence line names no user: only the caller's stats show whose preferences were saved.
        ("preferences-in-stats,preferences-wrong-user", "they were saved under another user"),
    ],
    ids=["stats", "no-dedup", "wrong-user"],
)
def test_preference_faults_fail_where_stats_show_them(
    faults: str, expected: str, suite_run: AheadRun
) -> None:
    run = suite_run.run
    check = "test_preferences.py::test_preferences_are_visible_and_not_duplicated"
    assert run.outcomes[check] == ("failure" if expected else "passed"), run.output
    assert expected in run.messages.get(check, ""), run.messages.get(check)
    assert "Traceback" not in run.output


# -- one cause, one failure --------------------------------------------------------------------------
@dataclass(frozen=True)
class Blocked:
    fault: str
    select: str
    owner: str  # the first selected check that uses the failed scenario: it reports the cause
    blocked: tuple[str, ...]  # the checks that depend on the scenario: skipped, blocked by the owner
    cause: str


BLOCKED = [
    Blocked(
        "batch-missing-field",
        "batch",
        BATCH_COUNTS,
        (BATCH_DUE, BATCH_SECOND, BATCH_LIMIT, BATCH_LOG),
        "batch consolidation (POST /api/memory/consolidate-archived {'limit': 100, 'force': True}): "
        "missing field 'skipped_count'",
    ),
    Blocked(
        "archive-ignored",
        "thread_archiving",
        ARCHIVING,
        (CONSOLIDATED_AT, ARCHIVE_AGAIN, RECALL),
        "archive the thread: 'archived' is not set afterwards: PATCH ",
    ),
]


SUMMARY = "summary.md"  # the GitHub step summary of a blocked case's run, in its folder


def blocked_run(folder: Path, case: Blocked) -> SuiteRun:
    env = {"SMOKE_LOCAL_FAULTS": case.fault, "GITHUB_STEP_SUMMARY": str(folder / SUMMARY)}
    return run_smoke(folder, "--env", "local", "-k", case.select, env=env)


@pytest.mark.slow
@pytest.mark.suite_run(plan=blocked_run)
@pytest.mark.parametrize("case", BLOCKED, ids=[b.fault for b in BLOCKED])
def test_a_failed_scenario_is_one_failure_and_blocks_its_dependents(
    case: Blocked, suite_run: AheadRun
) -> None:
    """A scenario that fails before any check can judge it: its first check fails with the cause, the
    checks that depend on it are skipped as blocked by that check; exit 1, and the verdict, JUnit and
    the GitHub summary show one root cause with the blocked checks under it (not 4 errors alike)."""
    run, summary = suite_run.run, suite_run.folder / SUMMARY
    assert run.returncode == 1, run.output
    last = run.output.strip().splitlines()[-1]
    assert f" 1 failed, {len(case.blocked)} skipped" in last, run.output
    owner = f"smoke/{case.owner}"
    assert run.outcomes[case.owner] == "failure" and case.cause in run.messages[case.owner]
    for check in case.blocked:
        assert run.outcomes[check] == "skipped", f"{check}: {run.outcomes[check]}\n{run.output}"
        reason = run.messages[check].splitlines()[0]  # JUnit's message: one line
        assert reason.startswith(f"blocked by {owner}: {case.cause}"), run.messages[check]
    (root,) = run.verdict["root_causes"]
    assert root["check"] == owner and case.cause in root["cause"]
    assert root["blocked"] == sorted(f"smoke/{c}" for c in case.blocked)
    text = summary.read_text()
    failures = text[text.index("### Failures") : text.index("### Checks")]
    assert failures.count("- **") == 1 and f"- **{owner}**" in failures, failures
    for check in case.blocked:
        assert f"    - `smoke/{check}`" in failures, failures
        assert f"| `smoke/{check}` | skipped, blocked by `{owner}` |" in text, text
    # Teardown asked the threads: an archive the service did not make set nothing off to wait for.
    assert run.verdict["run"]["cleanup_problems"] == [], run.verdict["run"]
    assert "Traceback" not in run.output


# -- CPU only during requests: a consolidation after the response stalls between requests ----------------
CPU_SELECT = "archive_enqueues or cpu_allocation or health_endpoint"


def cpu_idle_run(folder: Path) -> SuiteRun:
    config = folder / "smoke.toml"
    config.write_text(
        "\n".join(
            line for line in (ROOT / "smoke.toml").read_text().splitlines() if line != "cpu_idle = false"
        )
    )
    return run_smoke(
        folder,
        "-q",
        "--env",
        "local",
        f"--smoke-config={config}",
        "--log-deadline",
        "6",
        "-k",
        CPU_SELECT,
        # The starved consolidation is reported at teardown after 8 s in all, not after the default 20.
        env={"SMOKE_LOCAL_FAULTS": "llm-latency", "SMOKE_LOCAL_CPU_IDLE": "1", "SMOKE_CLEANUP_GRACE": "8"},
    )


@pytest.mark.slow
@pytest.mark.suite_run(plan=cpu_idle_run)
def test_cpu_idle_starves_the_queue_and_the_late_consolidation_says_why(suite_run: AheadRun) -> None:
    """With [expect] cpu_idle unset the deployment check only reports it; the archive check's late
    consolidation names cpu_idle and that its lines appeared only while requests were served."""
    run = suite_run.run
    assert run.outcomes[ARCHIVING] == "failure", run.output
    message = run.messages[ARCHIVING]
    for part in (
        "expected log line 'queue.consolidated'",
        "CPU starvation: 2 of 2 progress line(s) of the consolidation",
        "has cpu_idle = true",
        "--no-cpu-throttling",
    ):
        assert part in message, f"{ARCHIVING}'s message lacks {part!r}:\n{message}"
    assert run.outcomes[CPU_IDLE] == "passed", run.messages.get(CPU_IDLE)
    assert run.outcomes[HEALTH] == "passed", run.messages.get(HEALTH)
    [figure] = [f for f in run.verdict["figures"] if f["name"] == "cpu_idle"]
    assert figure["value"] == 1 and "stalls between requests" in figure["note"]
    assert "Traceback" not in run.output


def cpu_allocated_run(folder: Path) -> SuiteRun:
    return run_smoke(
        folder,
        "-q",
        "--env",
        "local",
        "--log-deadline",
        "6",
        "-k",
        CPU_SELECT,
        env={"SMOKE_LOCAL_FAULTS": "llm-latency", "SMOKE_LOCAL_CPU_IDLE": "0"},
    )


@pytest.mark.slow
@pytest.mark.suite_run(plan=cpu_allocated_run)
def test_with_cpu_always_allocated_the_same_consolidation_passes(suite_run: AheadRun) -> None:
    run = suite_run.run
    failed = {k: run.messages.get(k, "") for k, v in run.outcomes.items() if v != "passed"}
    assert run.returncode == 0 and not failed, f"{failed}\n{run.output}"
    assert {ARCHIVING, CPU_IDLE} <= run.outcomes.keys()
    [figure] = [f for f in run.verdict["figures"] if f["name"] == "cpu_idle"]
    assert figure["value"] == 0
