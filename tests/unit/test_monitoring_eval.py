"""Cloud Monitoring's ListTimeSeries arithmetic on plain data, without a server: filters, raw points,
alignment (periods end at the interval's end), aligners and reducers as common.proto defines them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from cloudrun_smoke.local import metrics, procfs
from cloudrun_smoke.local.distribution import Distribution, ExponentialBuckets, linear_percentile
from cloudrun_smoke.local.log_query import FilterError
from cloudrun_smoke.local.metrics import cpu_count, memory_bytes
from cloudrun_smoke.local.monitoring_eval import evaluate
from cloudrun_smoke.local.monitoring_filter import parse_filter
from cloudrun_smoke.local.monitoring_series import Descriptor, Observed, Query, QueryError, Series
from cloudrun_smoke.waiting import wait_until

BUCKETS = ExponentialBuckets(finite=10, growth=2.0, scale=1.0)  # [1,2) [2,4) ... [512,1024)
RESOURCE = ("project_id", "revision_name")
COUNT = Descriptor("test/count", "DELTA", "INT64", "1", ("code",), "r", RESOURCE, resolution=1.0)
LATENCY = Descriptor("test/latency", "DELTA", "DISTRIBUTION", "ms", ("code",), "r", RESOURCE, BUCKETS, 1.0)
GAUGE = Descriptor("test/gauge", "GAUGE", "INT64", "1", ("state",), "r", RESOURCE, resolution=1.0)


def observed(samples: list[tuple[float, float]], revision: str = "a", **labels: str) -> Observed:
    return Observed(labels, {"project_id": "p", "revision_name": revision}, samples)


def values(series: Series) -> list[object]:
    return [p.value for p in series.points]


def query(start: float, end: float, filter_: str = 'metric.type = "x"', **kwargs: object) -> Query:
    return Query(start, end, parse_filter(filter_).terms, **kwargs)  # type: ignore[arg-type]


# -- distributions -----------------------------------------------------------------------------------
def test_buckets_hold_their_lower_bound_and_not_their_upper_one() -> None:
    assert [BUCKETS.index(v) for v in (0.5, 1.0, 1.999, 2.0, 4.0, 1023.9, 1024.0, 1e9)] == [
        0,
        1,
        1,
        2,
        3,
        10,
        11,
        11,
    ]
    fine = ExponentialBuckets(100, 10 ** (1 / 50), 0.01)
    full = Distribution.of([1.0], fine)  # a ratio of exactly 1 reads back as about 1, never more
    assert 0.97 <= full.histogram_percentile(50) <= full.histogram_percentile(100) <= 1.0 + 1e-9
    assert all(fine.bounds(fine.index(v))[0] <= v for v in (0.0101, 0.5, 0.999))


def test_merging_distributions_equals_the_distribution_of_all_values() -> None:
    a_values, b_values = [1.0, 3.0, 5.0, 700.0], [2.0, 2.5, 90.0]
    merged = Distribution.of(a_values, BUCKETS).merge(Distribution.of(b_values, BUCKETS))
    direct = Distribution.of(a_values + b_values, BUCKETS)
    assert merged.count == direct.count == 7
    assert merged.bucket_counts == direct.bucket_counts
    assert merged.mean == pytest.approx(direct.mean)
    assert merged.sum_of_squared_deviation == pytest.approx(direct.sum_of_squared_deviation)


def test_percentiles_interpolate_inside_the_bucket_that_holds_the_rank() -> None:
    d = Distribution.of([10.0] * 50 + [100.0] * 50, BUCKETS)  # buckets [8,16) and [64,128)
    assert d.histogram_percentile(50) == pytest.approx(16.0)  # rank 50 is the end of the first bucket
    assert d.histogram_percentile(99) == pytest.approx(64 + 64 * 49 / 50)
    assert 8.0 <= d.histogram_percentile(5) < 16.0
    assert linear_percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)


# -- filters -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ('metric.labels.code = "200"', "200", True),
        ('metric.label.code = "200"', "404", False),
        ('metric.labels.code != "200"', "404", True),
        ('metric.labels.code = starts_with("2")', "204", True),
        ('metric.labels.code = starts_with("2")', "500", False),
        ("metric.labels.code = one_of(\"404\", '500')", "500", True),
        ('metric.labels.code != one_of("404", "500")', "500", False),
        (r'metric.labels.code = "a \"quoted\" b"', 'a "quoted" b', True),
    ],
)
def test_filter_terms(text: str, value: str, expected: bool) -> None:
    parsed = parse_filter(f'metric.type = "run.googleapis.com/request_count" AND {text}')
    assert parsed.metric_type == "run.googleapis.com/request_count"
    [term] = parsed.terms
    assert (term.target, term.key) == ("metric.label", "code")
    assert term.matches(value) is expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('metric.type = "m" OR resource.type = "r"', "'OR'"),
        ('metric.type = "m" AND (resource.type = "r")', "'('"),
        ('metric.type = "m" AND metric.labels.code > "3"', "'metric.labels.code > \"3\"'"),
        ('metric.type = "m" AND metric.labels.code = monitoring.regex.full_match("2.*")', "full_match"),
        ('metric.type = "m" AND metadata.user_labels.team = "x"', "metadata.user_labels.team"),
        ('metric.type = "m" AND metric.labels.code = 200', "'metric.labels.code = 200'"),
        ('resource.type = "r"', 'metric.type = "..."'),
        ('metric.type = starts_with("run")', "exactly"),
        ('metric.type = "a" AND metric.type = "b"', "several metric types"),
        ("", "empty"),
        ('metric.type == "m"', "'=='"),
        ('metric.type = "m -- unterminated', "unterminated string"),
        ('metric.type = "m" -- not a comment here', "'-'"),
    ],
)
def test_unsupported_filters_are_refused_naming_the_part(text: str, named: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_filters_select_series_and_refuse_labels_the_metric_lacks() -> None:
    series = [observed([(5.0, 1.0)], code="200"), observed([(5.0, 1.0)], "b", code="500")]
    found = evaluate(COUNT, series, query(0, 10, 'metric.type = "x" AND resource.labels.revision_name = "b"'))
    assert [s.resource_labels["revision_name"] for s in found] == ["b"]
    with pytest.raises(QueryError, match=r"no such label .*its labels: code"):
        evaluate(COUNT, series, query(0, 10, 'metric.type = "x" AND metric.labels.nope = "1"'))
    with pytest.raises(QueryError, match="valid combination of metric and monitored resource"):
        evaluate(COUNT, series, query(0, 10, 'metric.type = "x" AND resource.type = "gce_instance"'))


# -- raw points and alignment ------------------------------------------------------------------------
def test_raw_delta_points_cover_the_resolution_cut_at_the_interval_newest_first() -> None:
    samples = [(t, 1.0) for t in (0.5, 1.2, 1.7, 2.0, 3.4, 9.9)]
    [series] = evaluate(COUNT, [observed(samples)], query(1.0, 3.5))
    # (1, 2] holds 1.2, 1.7, 2.0; (3, 3.5] holds 3.4; 0.5 and 9.9 are outside (1, 3.5]
    assert [(p.start, p.end, p.value) for p in series.points] == [(3.0, 3.5, 1), (1.0, 2.0, 3)]
    assert series.kind == "DELTA" and series.value_type == "INT64"


def test_an_interval_is_half_open_start_excluded_end_included() -> None:
    [series] = evaluate(COUNT, [observed([(2.0, 1.0), (5.0, 1.0)])], query(2.0, 5.0))
    assert values(series) == [1]
    assert evaluate(COUNT, [observed([(1.0, 1.0)])], query(2.0, 5.0)) == []  # no point: no series


def test_aligned_points_end_at_the_interval_end_and_step_back_by_the_period() -> None:
    samples = [(float(t), 1.0) for t in range(1, 11)]
    [series] = evaluate(COUNT, [observed(samples)], query(0.0, 10.0, aligner="ALIGN_DELTA", period=3.0))
    assert [(p.start, p.end) for p in series.points] == [(7, 10), (4, 7), (1, 4), (-2, 1)]
    assert values(series) == [3, 3, 3, 1]
    [rate] = evaluate(COUNT, [observed(samples)], query(0.0, 10.0, aligner="ALIGN_RATE", period=3.0))
    assert values(rate) == pytest.approx([1.0, 1.0, 1.0, 1 / 3])
    assert rate.kind == "GAUGE" and rate.value_type == "DOUBLE" and rate.unit == "1/s"
    assert all(p.start == p.end for p in rate.points)


def test_aligners_on_a_distribution_follow_its_values() -> None:
    samples = [(1.5, 10.0), (1.6, 20.0), (4.5, 100.0)]  # two raw points: (1, 2] and (4, 5]

    def align(aligner: str) -> object:
        [series] = evaluate(LATENCY, [observed(samples)], query(0.0, 10.0, aligner=aligner, period=10.0))
        [value] = values(series)
        return value

    merged = align("ALIGN_DELTA")
    assert isinstance(merged, Distribution) and merged.count == 3
    assert align("ALIGN_SUM") == merged
    assert align("ALIGN_MEAN") == pytest.approx(130 / 3)
    assert align("ALIGN_COUNT") == 3
    assert align("ALIGN_PERCENTILE_50") == pytest.approx(merged.histogram_percentile(50))
    for refused in ("ALIGN_RATE", "ALIGN_MAX", "ALIGN_MIN"):
        with pytest.raises(QueryError, match=f'"{refused}".*kind DELTA and value type DISTRIBUTION'):
            align(refused)


def test_aligners_on_a_gauge() -> None:
    samples = [(1.0, 2.0), (2.0, 4.0), (3.0, 3.0)]

    def align(aligner: str) -> object:
        [series] = evaluate(GAUGE, [observed(samples)], query(0.0, 3.0, aligner=aligner, period=3.0))
        return values(series)[0]

    assert align("ALIGN_MEAN") == pytest.approx(3.0)
    assert (align("ALIGN_MAX"), align("ALIGN_MIN"), align("ALIGN_COUNT"), align("ALIGN_SUM")) == (4, 2, 3, 9)
    for refused in ("ALIGN_DELTA", "ALIGN_RATE", "ALIGN_PERCENTILE_99"):
        with pytest.raises(QueryError, match="kind GAUGE"):
            align(refused)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"aligner": "ALIGN_DELTA", "period": 0.5}, "at least 1s"),
        ({"aligner": "ALIGN_DELTA"}, "alignmentPeriod"),
        ({"reducer": "REDUCE_SUM"}, "needs a per-series aligner"),
        ({"aligner": "ALIGN_STDDEV", "period": 5.0}, "supported: ALIGN_NONE"),
        ({"aligner": "ALIGN_DELTA", "period": 5.0, "reducer": "REDUCE_MAX"}, "DISTRIBUTION"),
        (
            {
                "aligner": "ALIGN_DELTA",
                "period": 5.0,
                "reducer": "REDUCE_SUM",
                "group_by": ("metric.labels.x",),
            },
            "groupByFields",
        ),
        ({"start": 20.0}, "start time must not be later"),
    ],
)
def test_requests_google_refuses_are_refused(changes: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"start": 0.0, "end": 10.0, **changes}
    with pytest.raises(QueryError, match=message):
        evaluate(LATENCY, [observed([(5.0, 1.0)])], Query(**settings))  # type: ignore[arg-type]


# -- reduction ---------------------------------------------------------------------------------------
def three_revisions() -> list[Observed]:
    return [
        observed([(1.0, 1.0)] * 2, "a", code="200"),
        observed([(1.0, 1.0)] * 6, "b", code="200"),
        observed([(1.0, 1.0)] * 4, "b", code="500"),
    ]


@pytest.mark.parametrize(
    ("reducer", "expected"),
    [
        ("REDUCE_SUM", 12),
        ("REDUCE_MEAN", 4.0),
        ("REDUCE_MAX", 6),
        ("REDUCE_MIN", 2),
        ("REDUCE_COUNT", 3),
        ("REDUCE_PERCENTILE_50", 4.0),
        ("REDUCE_PERCENTILE_05", 2.2),
    ],
)
def test_reducers_across_series(reducer: str, expected: float) -> None:
    q = query(0.0, 5.0, aligner="ALIGN_DELTA", period=5.0, reducer=reducer)
    [series] = evaluate(COUNT, three_revisions(), q)
    assert values(series) == [pytest.approx(expected)]
    assert series.resource_labels == {"project_id": "p"} and series.metric_labels == {}


def test_group_by_keeps_only_the_grouped_labels() -> None:
    q = query(
        0.0,
        5.0,
        aligner="ALIGN_DELTA",
        period=5.0,
        reducer="REDUCE_SUM",
        group_by=("resource.label.revision_name",),
    )
    found = evaluate(COUNT, three_revisions(), q)
    assert [(s.resource_labels, s.metric_labels, values(s)) for s in found] == [
        ({"project_id": "p", "revision_name": "a"}, {}, [2]),
        ({"project_id": "p", "revision_name": "b"}, {}, [10]),
    ]
    q = query(
        0.0, 5.0, aligner="ALIGN_DELTA", period=5.0, reducer="REDUCE_SUM", group_by=("metric.labels.code",)
    )
    assert {s.metric_labels["code"]: values(s) for s in evaluate(COUNT, three_revisions(), q)} == {
        "200": [8],
        "500": [4],
    }


def test_reduce_sum_merges_distributions_and_percentiles_read_the_merge() -> None:
    series = [observed([(1.0, 10.0), (2.0, 12.0)], "a"), observed([(1.5, 300.0)], "b")]
    q = query(0.0, 5.0, aligner="ALIGN_DELTA", period=5.0, reducer="REDUCE_SUM")
    [merged] = evaluate(LATENCY, series, q)
    [value] = values(merged)
    assert isinstance(value, Distribution)
    direct = Distribution.of([10.0, 12.0, 300.0], BUCKETS)
    assert (value.count, value.bucket_counts) == (3, direct.bucket_counts)
    assert value.mean == pytest.approx(direct.mean)
    assert value.sum_of_squared_deviation == pytest.approx(direct.sum_of_squared_deviation)
    assert merged.kind == "DELTA" and merged.value_type == "DISTRIBUTION"
    [p99] = evaluate(LATENCY, series, replace(q, reducer="REDUCE_PERCENTILE_99"))
    assert values(p99) == [pytest.approx(value.histogram_percentile(99))] and p99.value_type == "DOUBLE"
    [mean] = evaluate(LATENCY, series, replace(q, reducer="REDUCE_MEAN"))
    assert values(mean) == [pytest.approx(322 / 3)]


# -- limits and /proc --------------------------------------------------------------------------------
def test_limits_as_gcloud_run_deploy_takes_them() -> None:
    assert [memory_bytes(m) for m in ("512Mi", "2Gi", "1G", "256M", "1024Ki")] == [
        512 * 2**20,
        2 * 2**30,
        10**9,
        256 * 10**6,
        2**20,
    ]
    assert [cpu_count(c) for c in ("1", "2", "0.5", "500m")] == [1.0, 2.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="'2GB' is not a quantity"):
        memory_bytes("2GB")
    with pytest.raises(ValueError, match="'two' is not a number of vCPUs"):
        cpu_count("two")


@pytest.mark.skipif(not procfs.available(), reason="needs Linux /proc")
def test_tree_usage_covers_the_process_and_its_children() -> None:
    child = (
        "import time; b = bytearray(64 << 20)\n"
        "for i in range(0, len(b), 4096): b[i] = 1\n"
        "end = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\n"
        "time.sleep(60)"
    )
    parent = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    try:
        usage = wait_until(
            lambda: (
                u
                if (u := procfs.tree_usage(process.pid)) and u.rss_bytes > 64 * 2**20 and u.cpu_seconds >= 0.3
                else None
            ),
            timeout=15,
            what="the child's 64 MiB and 0.3 s of CPU to show in its parent's tree",
            interval=0.05,
        )
        assert usage.processes == 2
    finally:
        os.killpg(process.pid, 9)
        process.wait()
    assert procfs.tree_usage(process.pid) is None


def test_without_proc_the_sampler_counts_instances_measures_nothing_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(procfs, "PROC", tmp_path / "no-proc")
    monkeypatch.setattr(metrics, "_warned_no_proc", False)
    recorder = metrics.MetricsRecorder()
    target = metrics.InstanceTarget("rev", "i-1", os.getpid(), True, 2**30, 1.0)
    with caplog.at_level(logging.WARNING, logger="cloudrun_smoke.local.metrics"):
        for _ in range(2):
            sampler = metrics.InstanceSampler(recorder, lambda: [target])
            sampler.start()
            sampler.stop()
            sampler.sample_once()
    assert [r.getMessage() for r in caplog.records] == [
        "no /proc on this system: container memory and CPU utilizations are not sampled"
    ]
    assert recorder.utilizations() == []
    assert [(s.revision, s.active + s.idle) for s in recorder.instance_counts()] == [("rev", 1), ("rev", 1)]
