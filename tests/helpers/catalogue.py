"""The fault catalogue: each row names a fault switch, the checks it concerns, the check it must fail and
the words its message must hold. Run by tests/e2e/test_fault_catalogue.py, read by
tests/unit/test_fault_coverage.py (every smoke check is some row's failing check)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEPLOYMENT = "test_deployment.py::"
READY = DEPLOYMENT + "test_revision_under_test_is_ready"
TRAFFIC = DEPLOYMENT + "test_revision_under_test_serves_all_traffic"
IMAGE = DEPLOYMENT + "test_image_is_the_expected_one"
RESOURCES = DEPLOYMENT + "test_resources_are_as_configured"
ENV_VARS = DEPLOYMENT + "test_required_env_vars_are_set"
CPU_IDLE = DEPLOYMENT + "test_cpu_allocation_suits_the_in_process_queue"
HEALTH = "test_health.py::test_health_endpoint_answers_as_configured"
ARCHIVING = "test_thread_archiving.py::test_archive_enqueues_a_consolidation_that_completes"
CONSOLIDATED_AT = "test_thread_archiving.py::test_consolidated_thread_shows_consolidated_at"
ARCHIVE_AGAIN = "test_thread_archiving.py::test_archiving_again_enqueues_nothing"
RECALL = "test_thread_archiving.py::test_memory_recalls_the_archived_conversation"
READY_CHECK = "test_health.py::test_service_is_ready"
BATCH = "test_batch_consolidation.py::"
BATCH_COUNTS = BATCH + "test_batch_answers_success_with_counts_that_add_up"
BATCH_DUE = BATCH + "test_batch_consolidates_the_runs_archived_thread"
BATCH_SECOND = BATCH + "test_second_batch_without_force_skips_what_the_first_consolidated"
BATCH_LIMIT = BATCH + "test_batch_honours_limit"
BATCH_LOG = BATCH + "test_batch_log_line_agrees_with_the_response"
PREFS = "test_preferences.py::"
NO_ERRORS = "test_no_unexpected_errors.py::test_no_unexpected_errors"
NEIGHBOUR_RATE = 4.0  # neighbours' archives a second: each logs 2-3 lines that name nobody


@dataclass(frozen=True)
class Row:
    fault: str
    select: str  # -k expression: the concerned checks and their neighbours
    failing: str
    message: tuple[str, ...]
    passing: tuple[str, ...] = ()
    args: tuple[str, ...] = field(default=())
    id: str = ""  # the row's test id: the fault's name, unless the fault has another row already
    environ: tuple[tuple[str, str], ...] = ()  # other SMOKE_* settings of the row (e.g. the stack's cpu_idle)
    neighbours: float = 0.0  # other users archiving threads this many times a second during the run
    stats: bool = False  # preferences_in_stats = true (with the preferences-in-stats variant)
    message_any: tuple[str, ...] = ()  # at least one of these is in the message too
    settles: bool = False  # teardown confirms every consolidation ended or never began (no cleanup problem)

    @property
    def name(self) -> str:
        return self.id or self.fault


CATALOGUE = [
    Row(
        "stack:revision-not-ready",
        "deployment or health",
        READY,
        ("is not ready", "startup probe checks"),
        (IMAGE, RESOURCES, ENV_VARS, HEALTH),
    ),
    Row(
        "stack:latest-revision-failed",
        "deployment or health",
        READY,
        (
            "failed deploy: the latest created revision emergencev8-backend-00002",
            "the latest ready one is emergencev8-backend-00001",
        ),
        (IMAGE, HEALTH),
    ),
    # The runbook's deploy (CPU only during requests) against [env.local.expect] cpu_idle = false.
    Row(
        "llm-latency",
        "deployment",
        CPU_IDLE,
        (
            "has cpu_idle = true, expected false ([env.local.expect] cpu_idle)",
            "stalls between requests",
            "--no-cpu-throttling",
        ),
        (READY, TRAFFIC, IMAGE, RESOURCES, ENV_VARS),
        environ=(("SMOKE_LOCAL_CPU_IDLE", "1"),),
        id="cpu-idle",
    ),
    Row("stack:traffic-split", "deployment", TRAFFIC, ("serves 90 %",), (READY, IMAGE, RESOURCES, ENV_VARS)),
    Row(
        "stack:unexpected-image",
        "deployment",
        IMAGE,
        ("unexpected-build", "expected one matching"),
        (READY, TRAFFIC, RESOURCES),
    ),
    Row(
        "stack:missing-env",
        "deployment",
        ENV_VARS,
        ("lacks env var(s) ENVIRONMENT",),
        (READY, TRAFFIC, IMAGE, RESOURCES),
    ),
    Row(
        "stack:wrong-resources",
        "deployment",
        RESOURCES,
        ("memory is '512Mi', expected '2Gi'",),
        (READY, TRAFFIC, IMAGE, ENV_VARS),
    ),
    # -- the reference service's faults ------------------------------------------------------------
    # The failure line names no thread: it may be another user's, so the check fails by its deadline,
    # showing the line beside it.
    Row(
        "enqueue-fails",
        "archive_enqueues or health",
        ARCHIVING,
        (
            "expected log line 'archive.enqueued'",
            "not seen after waiting 6.0 s",
            "meanwhile name no thread and no user",
            "Failed to enqueue consolidation",
        ),
        (HEALTH,),
        ("--log-deadline", "6"),
        # No enqueue line came: teardown watches for one as long as it would take to surface, not
        # the whole grace for a consolidation that never began.
        settles=True,
    ),
    Row(
        "consolidation-hangs",
        "archive_enqueues or health",
        ARCHIVING,
        (
            "expected log line 'queue.consolidated'",
            "not seen after waiting 6.0 s",
            "has cpu_idle = false",  # the late consolidation's diagnosis: not starved of CPU
            "Not a starved instance: the queue is slow or broken",
        ),
        (HEALTH,),
        ("--log-deadline", "6"),
        # The hung consolidation is reported at teardown after 8 s in all, not after the default 20.
        environ=(("SMOKE_CLEANUP_GRACE", "8"),),
    ),
    Row(
        "llm-unreachable",
        "archive_enqueues or health",
        ARCHIVING,
        ("failure line 'consolidation.error' appeared", "Erreur consolidation thread"),
        (HEALTH,),
    ),
    Row(
        "consolidated-at-missing",
        "thread_archiving",
        CONSOLIDATED_AT,
        ("was consolidated (log line seen) but consolidated_at is None",),
        (ARCHIVING, ARCHIVE_AGAIN, RECALL),
        ("--log-deadline", "6"),
    ),
    Row(
        "rearchive-enqueues",
        "thread_archiving",
        ARCHIVE_AGAIN,
        (
            "again, already archived, enqueued a second consolidation",
            "'archive.enqueued'",
            "must appear at most 1 time(s), but it did",
        ),
        # The redundant consolidation's "0 new concepts" often ends first: the archive check must not
        # take it for the archive's own.
        (ARCHIVING, CONSOLIDATED_AT, RECALL),
        ("--log-deadline", "6"),
    ),
    # The window is measured, not fixed: with every entry up to 8 s late, the second enqueue still
    # surfaces inside it (twice the largest lag the run saw), and the message says how long it was.
    Row(
        "rearchive-enqueues,stack:heavy-jitter",
        "thread_archiving",
        ARCHIVE_AGAIN,
        ("enqueued a second consolidation", "must appear at most 1 time(s), but it did (watched for "),
        (ARCHIVING, CONSOLIDATED_AT, RECALL),
        id="rearchive-enqueues-heavy-jitter",
    ),
    Row(
        "memory-forgets",
        "thread_archiving and not again",  # the re-archive check's wait would come before the recall's
        RECALL,
        (
            "the memory does not recall thread ",
            "GET /api/memory/concepts/search?q=Docker as ",
            "lists no concept from it after 6 s; it returned 0 result(s)",
        ),
        (ARCHIVING, CONSOLIDATED_AT),
        ("--log-deadline", "6"),
    ),
    Row(
        "llm-unreachable",
        "batch",
        BATCH_DUE,
        (
            "called with force=true, but the batch consolidated nothing (consolidated_count=0, skipped_count=2",
            "a failed consolidation is counted as skipped",
        ),
        (BATCH_COUNTS, BATCH_SECOND, BATCH_LIMIT, BATCH_LOG),
        id="llm-unreachable/batch",
    ),
    Row(
        "batch-log-disagrees",
        "batch",
        BATCH_LOG,
        (
            "the first call (force=true) answered 2 consolidated, 0 skipped, 0 errors",
            "its 'Batch completed' line says 3 consolidated, 0 skipped, 0 errors",
        ),
        (BATCH_COUNTS, BATCH_DUE, BATCH_SECOND, BATCH_LIMIT),
        ("--log-deadline", "6"),
    ),
    Row(
        "batch-missing-field",
        "batch",
        BATCH + "test_batch_answers_success_with_counts_that_add_up",
        ("missing field 'skipped_count'",),
    ),
    Row(
        "batch-counts-off",
        "batch",
        BATCH + "test_batch_answers_success_with_counts_that_add_up",
        ("but total_archived =",),
        (BATCH + "test_batch_honours_limit",),
    ),
    Row(
        "batch-ignores-limit",
        "batch",
        BATCH + "test_batch_honours_limit",
        ("limit=1 but the batch processed",),
        (BATCH + "test_batch_consolidates_the_runs_archived_thread",),
    ),
    Row(
        "batch-reconsolidates",
        "batch",
        BATCH + "test_second_batch_without_force_skips_what_the_first_consolidated",
        ("the second call (no force) consolidated",),
        (BATCH + "test_batch_consolidates_the_runs_archived_thread",),
    ),
    Row(
        "tend-garden-500", "tend_garden or health", PREFS + "test_tend_garden_answers", ("→ 500",), (HEALTH,)
    ),
    Row(
        "preferences-not-persisted",
        "persisted",
        PREFS + "test_preferences_are_persisted",
        ("expected log line 'preferences.saved'", "not seen after waiting 6.0 s"),
        (),
        ("--log-deadline", "6"),
    ),
    # The failure line names no thread nor user: never a failure on its own (the run's verdict passes
    # and reports it); the run's own save is missing, and that fails.
    Row(
        "preferences-upsert-fails",
        "persisted or unexpected_errors or health_endpoint",
        PREFS + "test_preferences_are_persisted",
        (
            "expected log line 'preferences.saved'",
            "not seen after waiting 6.0 s",
            "meanwhile name no thread and no user",
            "Vectorisation préférences impossible: Expected IDs to be unique",
        ),
        (NO_ERRORS, HEALTH),
        ("--log-deadline", "6"),
    ),
    # -- beside other users' traffic (neighbours): their successes must not hide the run's failure ---
    Row(
        "preferences-upsert-fails,neighbours-spared,preferences-in-stats",
        "persisted",
        PREFS + "test_preferences_are_persisted",
        (),
        args=("--log-deadline", "8"),
        id="preferences-upsert-fails/beside-neighbours",
        neighbours=NEIGHBOUR_RATE,
        stats=True,
        # Usually a neighbour's success line falls inside the run's window and the stats refute it;
        # else no line at all comes for the run.
        message_any=(
            "that line is another user's, the run's own preferences were not saved",
            "for any: not seen after waiting",  # the wait for the preferences line, as long as it took
        ),
    ),
    Row(
        "llm-unreachable,neighbours-spared",
        "archive_enqueues or health",
        ARCHIVING,
        ("failure line 'consolidation.error' appeared", "Erreur consolidation thread"),
        (HEALTH,),
        id="llm-unreachable/beside-neighbours",
        neighbours=NEIGHBOUR_RATE,
    ),
    # The run's verdict fails on ERROR lines that name the run's thread (here beside other users' lines).
    Row(
        "llm-unreachable,neighbours-spared",
        "archive_enqueues or unexpected_errors or health_endpoint",
        NO_ERRORS,
        ("ERROR line(s) concern this run", "Erreur consolidation thread"),
        (HEALTH,),
        id="llm-unreachable/run-verdict",
        neighbours=NEIGHBOUR_RATE,
    ),
    Row(
        "search-leaks",
        "tenant or health",
        "test_security.py::test_tenant_isolation",
        ("the search is not scoped to the caller",),
        (HEALTH,),
    ),
    Row(
        "archive-slow",
        "slo",
        "test_slo.py::test_archive_latency_p50",
        ("archive latency P50", "threshold 200 ms"),
    ),
    # Two samples, one round of the queue's two workers: five would queue three rounds of 6 s each.
    Row(
        "queue-slow=6",
        "queue_time",
        "test_slo.py::test_queue_time_p95",
        ("queue time P95", "threshold 5 s"),
        environ=(("SMOKE_ARCHIVE_SAMPLES", "2"),),
    ),
    Row("api-health-503", "health", HEALTH, ("→ 503",), (READY_CHECK,)),
    Row(
        "healthz-not-ready",
        "health",
        READY_CHECK,
        ("GET /healthz to answer 200",),
        (HEALTH,),
        ("--log-deadline", "4"),
    ),
    Row(
        "stack:slow-ingestion",
        "archive_enqueues or health",
        ARCHIVING,
        ("expected log line 'archive.enqueued'", "not seen after waiting 4.0 s", "filter: "),
        (HEALTH,),
        ("--log-deadline", "4"),
    ),
]
