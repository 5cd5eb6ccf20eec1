"""The one schema of ``smoke.toml``: an ``[env.NAME]`` table and its sub-tables as pydantic models.

Every model refuses unknown keys (``extra="forbid"``), so a misspelt key fails before anything runs;
:mod:`cloudrun_smoke.config.problems` says which, in one line. :class:`StackRuntime` holds what the
embedded stack needs whoever builds it: ``[env.NAME.stack]`` (:class:`StackSettings`) and the stack's
own constructor (``LocalStackConfig``) both build on it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from cloudrun_smoke.config.validators import (
    AtLeastOne,
    AuthMode,
    BaselineMode,
    CanaryPercent,
    Count,
    FaultNames,
    Flag,
    Invoker,
    NonEmptyText,
    NonNegativeNumber,
    PatternForms,
    PositiveInt,
    PositiveNumber,
    Probability,
    Ratio,
    Regex,
    Regexes,
    ServiceFaultNames,
    StringTable,
    SubKeyError,
    Table,
    Tag,
    Text,
    Texts,
    UrlPath,
    WindowLength,
    idle_timeout,
    known_failure,
)
from cloudrun_smoke.window.monitoring import CLOUD_RUN_METRIC_DELAY_S, MIN_ALIGNMENT_PERIOD_S

LOCAL_SAMPLE_PERIOD_S = 1.0  # the local stack samples its instances every second


class Settings(BaseModel):
    """A table of ``smoke.toml``: typed, immutable, and no key it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentExpectations(Settings):
    """``[env.NAME.expect]``: empty strings and ``None`` mean "not checked" (the check says so as a skip)."""

    image: Regex = ""  # a regular expression the container image must match (fullmatch)
    memory: Text = ""
    cpu: Text = ""
    timeout_seconds: Count | None = None
    min_instances: Count | None = None
    max_instances: Count | None = None
    env_names: Texts = ()  # env vars that must be set (values are never read)
    cpu_idle: Flag | None = None  # CPU only during requests: what an in-process queue needs is false


class SloThresholds(Settings):
    archive_p50_ms: PositiveNumber = 200.0
    queue_p95_s: PositiveNumber = 5.0
    archive_samples: AtLeastOne = 5  # threads the SLO scenario archives (the benchmark's scale knob)


class CheckSettings(Settings):
    """``[env.NAME.checks]``: how the service behaves where the contract allows several behaviours."""

    min_new_concepts: Count = 1
    expect_recall: Flag = True  # /api/memory/concepts/search finds the archived conversation
    preferences_in_stats: Flag = False  # the public code does not count preferences in /user/stats
    tend_garden_body: Table = Field(default_factory=lambda: {"thread_id": "{thread_id}"})
    dev_bypass_rejected: Flag = False  # security: x-dev-bypass without a token must be refused
    tenant_isolation: Flag = True  # needs two users: only where the auth mode lets the suite choose
    allow_errors: Regexes = ()  # regular expressions of ERROR lines that never fail the run
    reconcile_timeout: PositiveNumber = 120.0  # how long discovery waits while the service reconciles


class WindowSettings(Settings):
    """``[env.NAME.window]``: the post-deploy window checks (runbook "Métriques Succès (24h)").

    Thresholds default to the runbook; ``archive_p50_ms`` and ``queue_p95_s`` to ``[slo]`` when unset.
    A figure over fewer samples than its minimum is skipped with the reason, not judged.
    """

    max: WindowLength = 86400.0  # seconds: cap of the default window (since the revision was created)
    error_share_pct: PositiveNumber = 1.0  # 4.4: error rate < 1 % (5xx)
    latency_p95_ms: PositiveNumber = 10000.0  # the runbook's alert: latency P95 > 10 s
    memory_max_pct: PositiveNumber = 80.0  # 4.4: < 80 % of the memory limit
    cpu_p95_pct: PositiveNumber = 70.0  # 4.4: < 70 % (peaks during batch consolidation)
    archive_p50_ms: PositiveNumber | None = None
    queue_p95_s: PositiveNumber | None = None
    consolidation_failure_pct: PositiveNumber = 1.0
    pending_grace_s: PositiveNumber = 300.0  # enqueued without outcome for longer: lost, not pending
    min_requests: Count = 100
    min_archives: Count = 10
    min_consolidations: Count = 10
    min_metric_samples: Count = 10
    gauge_period_s: PositiveInt = 60  # instance_count is sampled once a minute by Cloud Run
    metric_delay: NonNegativeNumber | None = None  # seconds before now where Monitoring figures end
    max_log_pages: PositiveInt = 10  # per kind of log entry, 1000 entries a page: the hard cap on reads


class RegressionSettings(Settings):
    """``[env.NAME.regression]``: the revision under test against its baseline (``-m regression``).

    A figure fails when the revision under test is worse by more than its margin and, where a test
    applies, significantly so at ``alpha`` after Holm's correction across the run's figures. Ratios
    compare medians (1.2: 20 % slower); points compare shares and maxima in percentage points.
    """

    alpha: Probability = 0.01
    min_samples: AtLeastOne = 20  # per side, for a rank or proportion test; fewer skip the figure
    latency_ratio: Ratio = 1.2  # request latency
    archive_latency_ratio: Ratio = 1.2  # PATCH /api/threads/{id}
    queue_time_ratio: Ratio = 1.5  # enqueued -> consolidated
    error_share_points: PositiveNumber = 0.5  # 5xx share
    consolidation_failure_points: PositiveNumber = 1.0
    memory_points: PositiveNumber = 10.0  # memory utilization maximum
    cpu_points: PositiveNumber = 15.0  # CPU utilization maximum


class KnownFailure(Settings):
    """``[env.NAME.known_failures]``: ``test_name = {reason = "...", link = "..."}``."""

    reason: Text
    link: Text = ""


class StackRuntime(Settings):
    """What the embedded stack runs and how it behaves, whoever configures it."""

    service_cmd: NonEmptyText = "python -m emergence_reference"
    ingestion_delay: NonNegativeNumber = 1.0
    ingestion_jitter: NonNegativeNumber = 0.5
    startup_timeout: PositiveNumber = 30.0
    read_quota_per_minute: PositiveInt | None = 60  # None: no quota
    instances: PositiveInt = 1  # instances per revision, each its own process and data directory
    shared_state: Flag = False  # one Chroma server + SQLite file for all: CHROMA_HOST/PORT, DATABASE_URL
    iam: Flag = False  # a private service: requests need an invoker's ID token (Cloud Run IAM)
    candidate_cmd: Text = ""  # a second revision beside the serving one: no traffic, reachable by `tag`
    tag: Tag = ""
    candidate_percent: CanaryPercent = 0  # its share of the traffic: 0, or a canary split (--canary)
    faults: FaultNames = ()  # "stack:NAME" switches of the stack; other names go to EMERGENCE_FAULTS
    # Cloud Monitoring as the stack serves it: the shortest alignment period it takes (Google's is 60 s;
    # a local window of a few seconds needs less, so it must be allowed here) ...
    min_alignment_period: PositiveNumber = MIN_ALIGNMENT_PERIOD_S
    metric_delay: NonNegativeNumber = 1.0  # ... and how long a metric point stays invisible once sampled
    # Seconds without a request before an instance beyond min_instances is shut down (0: never).
    idle_timeout: NonNegativeNumber = 0.0
    # A baseline revision deployed before the revision under test, for the regression checks: "split"
    # serves both at once, half the traffic each; "sequence" serves the baseline alone first.
    baseline: BaselineMode = ""
    revision_faults: ServiceFaultNames = ()  # service faults of the revision under test only


class StackSettings(StackRuntime):
    """``[env.NAME.stack]``: how ``--env local`` builds its embedded Cloud Run."""

    image: NonEmptyText = "local/emergencev8-backend:dev"
    memory: NonEmptyText = "2Gi"
    cpu: NonEmptyText = "2"
    timeout_seconds: PositiveInt = 300
    min_instances: Count = 1
    max_instances: PositiveInt = 10
    env: StringTable = Field(default_factory=dict, repr=False)  # values may be secrets
    cpu_idle: Flag = False  # CPU only while a request is served (the runbook's deploy gives true)
    startup_cpu_boost: Flag = False  # reported by the Admin API only
    traffic_users: PositiveInt = 6  # `-m window` on the local stack: simulated users of the traffic
    traffic_threads: PositiveInt = 8  # threads each of them creates, writes to and archives
    traffic_deadline: PositiveNumber = 60.0  # seconds: no new thread after it, nor waiting for more
    neighbours: NonNegativeNumber = 0.0  # other users' archived threads per second during the run

    @field_validator("idle_timeout", mode="before")
    @classmethod
    def _outlasts_a_run(cls, seconds: Any) -> float:
        """From a file, at least IDLE_TIMEOUT_FLOOR_S: the stack never scales an instance in between two
        checks of a run."""
        return idle_timeout(seconds)

    @model_validator(mode="after")
    def _candidate_is_tagged(self) -> StackSettings:
        if self.candidate_cmd and not self.tag:
            raise ValueError("candidate_cmd needs a tag (its revision gets no traffic)")
        return self


# Keys a smoke.toml may still carry from an earlier version: what replaced them, in the error.
REMOVED_KEYS = {
    "strict_errors": "no longer exists: a failure line that names no thread and no user is another "
    "user's as likely as the run's, so it never fails a check on its own (README, Other users' lines); "
    "delete the key",
}


class Environment(Settings):
    """One ``[env.NAME]`` of ``smoke.toml``, overrides applied: what a run is pointed at."""

    name: str
    source: str  # the file it was read from
    description: Text = ""
    project: NonEmptyText
    region: NonEmptyText
    service: NonEmptyText
    auth: AuthMode = "dev-bypass"
    bearer_token_env: NonEmptyText = ""
    smoke_user_prefix: NonEmptyText = "smoke-"
    log_deadline: PositiveNumber = 60.0
    log_lookback: PositiveNumber = 120.0
    # Teardown's whole wait (the run's own waits included) for the consolidations the run set off to
    # end, before a per-run user's memory is cleared: one still running then is reported, not waited for.
    cleanup_grace: PositiveNumber = 20.0
    read_budget_per_minute: PositiveInt = 30
    health_path: UrlPath = "/api/health"
    health_expect: Table = Field(default_factory=lambda: {"status": "ok"})
    readiness_path: UrlPath = "/healthz"
    http_timeout: PositiveNumber = 30.0
    run_api_endpoint: Text = ""
    logging_api_endpoint: Text = ""
    monitoring_api_endpoint: Text = ""  # gRPC host:port of Cloud Monitoring (default: Google's)
    read_only: Flag = False
    login_email_env: NonEmptyText = "SMOKE_LOGIN_EMAIL"
    login_password_env: NonEmptyText = "SMOKE_LOGIN_PASSWORD"
    id_token_audience: Text = ""
    impersonate_service_account: Text = ""
    invoker: Invoker = ""  # "id-token": an ID token for Cloud Run IAM in X-Serverless-Authorization
    expect: DeploymentExpectations = Field(default_factory=DeploymentExpectations)
    slo: SloThresholds = Field(default_factory=SloThresholds)
    window: WindowSettings = Field(default_factory=WindowSettings)
    regression: RegressionSettings = Field(default_factory=RegressionSettings)
    checks: CheckSettings = Field(default_factory=CheckSettings)
    patterns: PatternForms = Field(default_factory=dict)
    known_failures: dict[str, Annotated[KnownFailure, BeforeValidator(known_failure)]] = Field(
        default_factory=dict
    )
    stack: StackSettings | None = None

    @model_validator(mode="after")
    def _gauge_period_is_aligned(self) -> Environment:
        """Cloud Monitoring refuses an alignment period under 60 s (``Aggregation.alignment_period``:
        "The value must be at least 60 seconds"): a shorter ``gauge_period_s`` is found when smoke.toml
        is read rather than by the window checks' first ListTimeSeries call."""
        period, minimum = self.window.gauge_period_s, self.min_alignment_period
        if period < minimum:
            whose = (
                "this stack's min_alignment_period"
                if self.is_local
                else "Cloud Monitoring's shortest alignment period"
            )
            raise SubKeyError(
                ("window", "gauge_period_s"), f"{period} s is shorter than {minimum:g} s, {whose}"
            )
        return self

    @property
    def user_is_chosen_by_suite(self) -> bool:
        """Whether each run may act as its own user (dev-bypass, or no auth); else one fixed identity."""
        return self.auth in ("dev-bypass", "none")

    @property
    def is_local(self) -> bool:
        return self.stack is not None

    @property
    def min_alignment_period(self) -> float:
        """The shortest alignment period the environment's Cloud Monitoring takes, in seconds."""
        return self.stack.min_alignment_period if self.stack else float(MIN_ALIGNMENT_PERIOD_S)

    @property
    def metric_delay(self) -> float:
        """How far before now the window's Monitoring figures end: ``[window] metric_delay``, by
        default one sampling period plus the time a sampled point may stay invisible."""
        if self.window.metric_delay is not None:
            return self.window.metric_delay
        if self.stack is not None:
            return LOCAL_SAMPLE_PERIOD_S + self.stack.metric_delay
        return float(CLOUD_RUN_METRIC_DELAY_S)

    def with_overrides(self, **changes: Any) -> Environment:
        """A copy with the given keys changed (``None`` leaves a key as it is); values are trusted."""
        return self.model_copy(update={k: v for k, v in changes.items() if v is not None})
