"""The Cloud Logging filter evaluator: the shared case table, then the semantics that are easy to get wrong."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from cloudrun_smoke.local.log_query import MAX_FILTER_LENGTH, MAX_NESTING, FilterError, compile_filter
from helpers.log_filter_cases import CASES, ENTRIES, INVALID


def selected(filter_text: str, entries: list[dict[str, Any]] = ENTRIES) -> set[str]:
    log_filter = compile_filter(filter_text)
    return {entry["insertId"] for entry in entries if log_filter.matches(entry)}


def matches(filter_text: str, entry: dict[str, Any]) -> bool:
    return compile_filter(filter_text).matches(entry)


def entry(**fields: Any) -> dict[str, Any]:
    return {
        "insertId": "x",
        "logName": "projects/p/logs/run.googleapis.com%2Fstdout",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "svc"}},
        "timestamp": "2026-11-24T09:03:45.528342Z",
        **fields,
    }


# -- the shared table --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("filter_text", "expected"), CASES, ids=[repr(f)[:70] for f, _ in CASES])
def test_case_selects_exactly(filter_text: str, expected: set[str]) -> None:
    assert selected(filter_text) == expected


@pytest.mark.parametrize(("filter_text", "expected"), CASES, ids=[repr(f)[:70] for f, _ in CASES])
def test_case_keeps_its_meaning_when_the_client_adds_a_time_bound(
    filter_text: str, expected: set[str]
) -> None:
    """What the google-cloud-logging test sends: every entry is from 2026, so the set can't change."""
    wrapped = (
        filter_text
        if "timestamp" in filter_text
        else f'({filter_text}) AND timestamp>="2000-01-01T00:00:00Z"'
    )
    assert selected(wrapped) == expected


def test_case_table_is_well_formed() -> None:
    ids = [e["insertId"] for e in ENTRIES]
    assert len(ids) == len(set(ids)) >= 12
    filters = [f for f, _ in CASES]
    assert len(filters) == len(set(filters)), "duplicate cases"
    assert all(f.strip() for f in filters), "an empty case would wrap to '() AND ...'"
    assert any(not expected for _, expected in CASES), "no case that matches nothing"
    assert all(expected <= set(ids) for _, expected in CASES)
    assert set().union(*(expected for _, expected in CASES)) == set(ids), "an entry no case selects"


# Each invalid filter and a phrase its error must contain: the message names the actual problem.
EXPECTED_MESSAGES = {
    "(severity=ERROR": "unbalanced '(' at column 1",
    "severity=ERROR)": "unbalanced ')' at column 15",
    "severity=ERROR AND": "'AND' at column 16 has nothing after it",
    "AND severity=ERROR": "'AND' at column 1 has nothing before it",
    "severity=ERROR OR OR logName:stderr": "'OR' at column 16 is followed by 'OR'",
    "NOT": "'NOT' at column 1 has nothing after it",
    "severity=": "expected a value after '=' at column 9",
    "()": "empty parentheses at column 1",
    'textPayload=("a" OR)': "'OR' at column 18 is followed by ')'",
    "severity==ERROR": "unknown comparator '==' at column 9",
    "httpRequest.status=>500": "unknown comparator '=>'",
    "httpRequest.status<>500": "unknown comparator '<>'",
    'textPayload~"x"': "'~' at column 12",
    'textPayload!"x"': "'!' at column 12 is not an operator",
    'textPayload:"unterminated': "unterminated string starting at column 13",
    "textPayload:'single'": "single quote at column 13",
    "severity=ERROR && logName:stderr": "'&&' at column 16 is not an operator; write AND",
    "insertId = abc:def": "unexpected comparator ':' at column 15",
    "*": "'*' at column 1 is only allowed in the presence test",
    "textPayload=*": "'*' at column 13 is only allowed in the presence test",
    "textPayload:*memory": "wildcards are not supported",
    "labels. = x": "'.' at column 7 must be followed by a field name",
    "jsonPayload.x = - 5": "expected a value after '=' at column 15, found '-'",
    'textPayload="bad \\x4 escape"': "bad escape '\\x' at column 18",
    "sample(insertId, 0.1)": "sample() at column 1 is not supported",
    'SEARCH("hello")': "SEARCH() at column 1 is not supported",
    'cast(timestamp, STRING) =~ "^2026"': "cast() at column 1 is not supported",
    "foo(bar)": "unknown function foo()",
    "log_id()": "log_id() at column 1 takes one argument",
    'log_id("run.googleapis.com/stderr") = 1': "can't be compared",
    'ip_in_net(httpRequest.remoteIp, "10.0.0.0/33")': "'10.0.0.0/33' is not a legal IP address or range",
    "thud = 1": "unknown field 'thud' at column 1",
    "textPayload.thud = 1": "textPayload is a string and has no field 'thud'",
    "httpRequest.thud = 1": "unknown field httpRequest.thud",
    "labels.run.googleapis.com/instanceId = inst-a1": 'labels."run.googleapis.com/instanceId"',
    '"textPayload" = "x"': "must be a field path",
    'httpRequest = "GET"': "httpRequest is a message",
    'labels."a".b': "needs a comparison",
    "severity=LOUD": "'LOUD' at column 10 is not a LogSeverity",
    "severity=450": "'450' at column 10 is not a LogSeverity",
    "severity=~ERR": "regular expressions only match string fields; severity is a LogSeverity",
    'timestamp>="yesterday"': "'yesterday' at column 12 is not an RFC 3339 timestamp",
    'timestamp>="2026-11-24 09:00:00Z"': "is not an RFC 3339 timestamp",
    'timestamp>="2026-13-01T00:00:00Z"': "month must be in 1..12",
    "httpRequest.latency>5": "'5' at column 21 is not a duration",
    "httpRequest.latency>5sec": "'5sec' at column 21 is not a duration",
    "httpRequest.status>=5xx": "httpRequest.status is an integer, but '5xx' at column 21 is not an integer",
    "jsonPayload.note<NULL_VALUE": "NULL_VALUE at column 18 can only be compared with '=' or '!='",
    "textPayload=NULL_VALUE": "textPayload is a string",
    "NULL_VALUE": "NULL_VALUE at column 1 needs a field",
    'textPayload=~"(a)\\\\1"': "a backreference",
    'textPayload=~"foo(?=bar)"': "a lookahead",
    'textPayload=~"(?<!x)y"': "a lookbehind",
    'textPayload=~"a++"': "a possessive quantifier",
    'textPayload=~"(unclosed"': "invalid regular expression '(unclosed' at column 14",
    "textPayload:" + '"' + "x" * 20_000 + '"': "the limit is 20000",
}


@pytest.mark.parametrize("filter_text", INVALID, ids=[repr(f)[:50] for f in INVALID])
def test_invalid_filter_is_rejected_with_a_specific_message(filter_text: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(filter_text)
    message = str(caught.value)
    assert message.strip()
    assert EXPECTED_MESSAGES[filter_text] in message


def test_every_invalid_filter_has_an_expected_message() -> None:
    assert set(INVALID) == set(EXPECTED_MESSAGES)


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


# -- empty filters, reuse, limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "-- just a comment", "-- one\n-- two\n"])
def test_empty_filter_matches_everything(text: str) -> None:
    assert selected(text) == {e["insertId"] for e in ENTRIES}


def test_compiled_filter_is_reusable() -> None:
    log_filter = compile_filter("severity>=ERROR")
    assert [log_filter.matches(e) for e in ENTRIES] == [log_filter.matches(e) for e in ENTRIES]
    assert "severity>=ERROR" in repr(log_filter)


def test_length_limit_is_inclusive() -> None:
    padding = MAX_FILTER_LENGTH - len('textPayload:""')
    compile_filter('textPayload:"' + "x" * padding + '"')
    with pytest.raises(FilterError):
        compile_filter('textPayload:"' + "x" * (padding + 1) + '"')


def test_nesting_is_bounded_by_a_filter_error_not_the_stack() -> None:
    depth = MAX_NESTING
    assert selected("(" * depth + "firestore" + ")" * depth) == {"e07"}
    with pytest.raises(FilterError, match=f"nest more than {MAX_NESTING} deep"):
        compile_filter("(" * (depth + 1) + "firestore" + ")" * (depth + 1))
    assert selected("NOT " * 4001 + "firestore") == selected("NOT firestore")  # chains don't recurse


FRAGMENTS = [
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "-",
    "and",
    "severity",
    "=",
    "!=",
    ":",
    "*",
    ">=",
    "<",
    "=~",
    "!~",
    ".",
    ",",
    "~",
    "!",
    "'",
    "\\",
    '"x"',
    '"(a"',
    '"\\u00e9"',
    '"',
    "ERROR",
    "5s",
    "-1",
    "1e3",
    "2026-11-24",
    '"2026-11-24T09:03:45+0000"',
    "timestamp",
    "httpRequest.latency",
    "httpRequest.status",
    "jsonPayload.a",
    "jsonPayload.tags",
    "labels.",
    'labels."k"',
    "NULL_VALUE",
    "log_id(",
    "ip_in_net(",
    "sample(",
    "--c\n",
    "e01",
    "firestore",
]


def test_any_input_compiles_or_raises_filter_error_and_evaluation_never_raises() -> None:
    rng = random.Random(160)
    for _ in range(3000):
        text = "".join(rng.choice(FRAGMENTS) + rng.choice(["", " "]) for _ in range(rng.randint(1, 9)))
        try:
            log_filter = compile_filter(text)
        except FilterError as e:
            assert str(e), text
            continue
        for subject in ENTRIES:
            log_filter.matches(subject)


def test_multi_line_errors_give_line_and_column() -> None:
    with pytest.raises(FilterError, match=r"line 2, column 9"):
        compile_filter('logName:stderr\nseverity=="ERROR"')


# -- boolean structure --------------------------------------------------------------------------------------


def flags(*names: str) -> dict[str, Any]:
    return entry(jsonPayload={name: 1 for name in names})


def test_or_binds_tighter_than_and() -> None:
    only_a = flags("a")
    assert not matches("jsonPayload.a=1 OR jsonPayload.b=1 AND jsonPayload.c=1", only_a)  # (a OR b) AND c
    assert matches("jsonPayload.a=1 OR (jsonPayload.b=1 AND jsonPayload.c=1)", only_a)
    assert matches("jsonPayload.a=1 OR jsonPayload.b=1 AND jsonPayload.c=1", flags("a", "c"))


def test_docs_precedence_example_holds_for_every_combination() -> None:
    written = "jsonPayload.a=1 OR NOT jsonPayload.b=1 AND NOT jsonPayload.c=1 OR jsonPayload.d=1"
    grouped = "(jsonPayload.a=1 OR (NOT jsonPayload.b=1)) AND ((NOT jsonPayload.c=1) OR jsonPayload.d=1)"
    for n in range(5):
        for names in itertools.combinations("abcd", n):
            assert matches(written, flags(*names)) == matches(grouped, flags(*names)), names


def test_double_negation() -> None:
    assert selected("NOT NOT firestore") == selected("- -firestore") == selected("firestore") == {"e07"}


def test_minus_and_juxtaposition_are_not_and_and() -> None:
    for names in itertools.product([(), ("a",)], [(), ("b",)], [(), ("e",)]):
        subject = flags(*itertools.chain(*names))
        assert matches("jsonPayload.a=1 jsonPayload.b=1 -jsonPayload.e=1", subject) == matches(
            "jsonPayload.a=1 AND jsonPayload.b=1 AND NOT jsonPayload.e=1", subject
        )


def test_only_upper_case_operators_are_operators() -> None:
    subject = entry(textPayload="cats and dogs")
    assert matches("cats and dogs", subject)  # three search terms, all present
    assert not matches("cats and birds", subject)
    assert not matches("cats or birds", subject)  # 'or' is a term, not a disjunction
    assert matches("cats OR birds", subject)
    assert not matches("not cats", entry(textPayload="cats"))  # the term "not" is absent


def test_negative_numbers_on_the_right_and_minus_as_not_on_the_left() -> None:
    subject = entry(jsonPayload={"x": -1})
    assert matches("jsonPayload.x=-1", subject)
    assert matches("jsonPayload.x=(-1 OR 5)", subject)
    assert not matches("-jsonPayload.x=-1", subject)
    assert matches('jsonPayload.x="-1"', subject)


# -- missing and defaulted fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "comparison",
    [
        "jsonPayload.absent=foo",
        "jsonPayload.absent!=foo",
        "jsonPayload.absent<5",
        "jsonPayload.absent>=5",
        "jsonPayload.absent:foo",
        'jsonPayload.absent=~"."',
        'jsonPayload.absent!~"."',
        "jsonPayload.absent:*",
        "labels.absent=foo",
        "labels.absent!=foo",
        "resource.labels.absent!=foo",
    ],
)
def test_comparisons_on_a_missing_field_fail_and_their_negation_succeeds(comparison: str) -> None:
    subject = entry(jsonPayload={"present": "foo"}, labels={"present": "foo"})
    assert not matches(comparison, subject)
    assert matches(f"NOT {comparison}", subject)


def test_absent_logentry_fields_are_defaulted() -> None:
    plain = entry(textPayload="hello")
    assert matches("severity=DEFAULT", plain)
    assert matches("severity<DEBUG", plain)
    assert not matches("severity:*", plain)
    assert matches("httpRequest.status=0", plain)
    assert matches("httpRequest.status!=200", plain)
    assert matches('httpRequest.latency="0s"', plain)
    assert matches('trace=""', plain)
    assert not matches("trace:*", plain)
    assert not matches('jsonPayload:"hello"', plain)


def test_presence_means_explicitly_set() -> None:
    assert matches("httpRequest:*", entry(httpRequest={"status": 200}))
    assert not matches("httpRequest:*", entry())
    assert matches("jsonPayload.note:*", entry(jsonPayload={"note": None}))  # null is a value
    assert not matches("severity:*", entry(severity="DEFAULT"))


# -- values and types ---------------------------------------------------------------------------------------

INSTANT = "2026-11-24T09:03:45.528342Z"


@pytest.mark.parametrize(
    "written",
    [
        "2026-11-24T09:03:45.528342Z",
        "2026-11-24T09:03:45.528342+00:00",
        "2026-11-24T09:03:45.528342+0000",  # what google-cloud-logging sends
        "2026-11-24T09:03:45.528342000Z",
        "2026-11-24t09:03:45.528342z",
        "2026-11-24T10:03:45.528342+01:00",
        "2026-11-24T04:33:45.528342-0430",
    ],
)
def test_timestamps_compare_as_instants_whatever_their_form(written: str) -> None:
    subject = entry(timestamp=INSTANT)
    assert matches(f'timestamp="{written}"', subject)
    assert matches(f'timestamp>="{written}" AND timestamp<="{written}"', subject)
    assert not matches(f'timestamp>"{written}"', subject)


def test_a_date_means_midnight_utc_and_nanoseconds_count() -> None:
    assert matches('timestamp="2026-11-24"', entry(timestamp="2026-11-24T00:00:00Z"))
    assert not matches('timestamp>="2026-11-24"', entry(timestamp="2026-11-23T23:59:59.999999999Z"))
    subject = entry(timestamp="2026-11-24T09:00:00.000000001Z")
    assert matches('timestamp>"2026-11-24T09:00:00Z"', subject)
    assert not matches('timestamp>"2026-11-24T09:00:00.000000001Z"', subject)
    assert matches('receiveTimestamp>"2026-11-24"', entry(receiveTimestamp="2026-11-24T00:00:01+00:00"))


SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]


@pytest.mark.parametrize(("lower", "higher"), list(itertools.pairwise(SEVERITIES)))
def test_severities_are_ordered(lower: str, higher: str) -> None:
    subject = entry(severity=lower)
    assert matches(f"severity<{higher}", subject)
    assert not matches(f"severity>={higher}", subject)
    assert matches(f"severity<{SEVERITIES.index(higher) * 100}", subject)
    assert matches(f'severity="{lower.lower()}"', subject)


def test_severity_written_as_a_number_in_the_entry() -> None:
    assert matches("severity=ERROR", entry(severity=500))


@pytest.mark.parametrize(
    ("latency", "comparison"),
    [
        ("1s", "httpRequest.latency>999ms"),  # the docs' example
        ("1s", "httpRequest.latency=1000000000ns"),
        ("1s", "httpRequest.latency=1000000us"),
        ("3600s", "httpRequest.latency=1h"),
        ("3600s", "httpRequest.latency=60m"),
        ("0.5s", 'httpRequest.latency=".5s"'),  # unquoted text can't start with "."
        ("0.5s", "httpRequest.latency>=0.5S"),
        ("0.000000001s", "httpRequest.latency>0s"),
        ("0.123s", 'httpRequest.latency<"123.5ms"'),
    ],
)
def test_durations_compare_as_lengths(latency: str, comparison: str) -> None:
    assert matches(comparison, entry(httpRequest={"latency": latency}))


def test_strings_compare_ignoring_case_and_width() -> None:
    subject = entry(textPayload="Straße ＡＢＣ")  # full-width letters fold under NFKC
    assert matches('textPayload="STRASSE abc"', subject)
    assert matches("textPayload:abc", subject)
    assert matches('textPayload<"strasse abd"', subject)
    assert not matches('textPayload=~"strasse"', subject)  # regular expressions aren't normalised


def test_arrays_compare_each_member() -> None:
    subject = entry(jsonPayload={"shoeSize": [8.5, 9, 6], "items": [{"name": "a"}, {"name": "b"}]})
    assert matches("jsonPayload.shoeSize<7", subject)  # the docs' example: 6 < 7
    assert not matches("jsonPayload.shoeSize>9", subject)
    assert matches("jsonPayload.items.name=b", subject)


def test_null_value() -> None:
    assert matches("jsonPayload.field=NULL_VALUE", entry(jsonPayload={"field": None}))
    assert not matches("jsonPayload.field=NULL_VALUE", entry(jsonPayload={"field": "x"}))
    assert not matches("jsonPayload.field=NULL_VALUE", entry(jsonPayload={}))
    assert matches('jsonPayload.field="NULL_VALUE"', entry(jsonPayload={"field": "null_value"}))


def test_value_lists_apply_the_field_and_comparator_to_each_value() -> None:
    subject = entry(jsonPayload={"animal": "a pet that is nice", "cat": "shorthair"})
    assert matches('jsonPayload.animal:("nice" AND "pet")', subject)
    assert not matches('jsonPayload.animal:("nice" AND "dog")', subject)
    assert matches('jsonPayload.cat=("longhair" OR "shorthair")', subject)
    assert matches("jsonPayload.cat=(longhair OR (NOT longhair AND shorthair))", subject)


# -- field paths and strings ----------------------------------------------------------------------------------


def test_quoted_path_segments() -> None:
    subject = entry(
        labels={"run.googleapis.com/instanceId": "00abc", "compute.googleapis.com/resource_id": "7"},
        jsonPayload={":name": "apple", "foo.bar": "apple", '"foo"': "apple", "a": {"b.c": {"d": 1}}},
    )
    assert matches('labels."run.googleapis.com/instanceId"="00abc"', subject)
    assert matches('labels."compute.googleapis.com/resource_id"=7', subject)
    assert not matches('labels."run.googleapis.com/instanceid"="00abc"', subject)  # map keys keep case
    assert matches('jsonPayload.":name":apple', subject)
    assert matches('jsonPayload."foo.bar":apple', subject)
    assert matches('jsonPayload."\\"foo\\"":apple', subject)
    assert matches('jsonPayload.a."b.c".d=1', subject)


def test_proto_field_names_ignore_case_and_underscores_but_payload_keys_do_not() -> None:
    subject = entry(httpRequest={"requestMethod": "GET"}, jsonPayload={"endTime": "x"})
    assert matches("httpRequest.requestMethod=GET", subject)
    assert matches("http_request.request_method=GET", subject)
    assert matches("HTTPREQUEST.REQUESTMETHOD=GET", subject)
    assert matches("jsonPayload.endTime=x", subject)
    assert not matches("jsonPayload.end_time=x", subject)


@pytest.mark.parametrize(
    ("written", "text"),
    [
        ('"say \\"hi\\""', 'say "hi"'),
        ('"back\\\\slash"', "back\\slash"),
        ('"a\\nb\\tc\\rd"', "a\nb\tc\rd"),
        ('"caf\\u00e9"', "café"),
        ('"smile \\U0001F600"', "smile 😀"),
        ('"\\x41BC"', "ABC"),
        ('"keep \\d as is"', "keep \\d as is"),
    ],
)
def test_string_escapes(written: str, text: str) -> None:
    assert matches(f"textPayload={written}", entry(textPayload=text))


def test_unquoted_values() -> None:
    subject = entry(logName="projects/p/logs/run.googleapis.com%2Fstderr", textPayload="a-b_c/d")
    assert matches("logName=projects/p/logs/run.googleapis.com%2Fstderr", subject)
    assert matches("textPayload=a-b_c/d", subject)


# -- regular expressions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "^Out",  # anchors work, matching is unanchored otherwise
        "memory",
        "(?i)OUT OF",
        "process (?<pid>\\\\d+)",  # RE2's named group
        "process (?P<pid>\\\\d+)",
        "\\\\(python\\\\)\\\\z",  # RE2's \z
        "[[:alpha:]]+ [[:digit:]]{2}",
        "\\\\Q(python)\\\\E$",  # RE2's literal quoting
        "\\\\117ut",  # octal escape: O
    ],
)
def test_re2_patterns(pattern: str) -> None:
    assert matches(
        f'textPayload=~"{pattern}"', entry(textPayload="Out of memory: killed process 17 (python)")
    )


def test_regex_is_case_sensitive_and_negation_needs_a_string() -> None:
    subject = entry(textPayload="Hello", jsonPayload={"n": 5})
    assert not matches('textPayload=~"hello"', subject)
    assert matches('textPayload!~"hello"', subject)
    assert not matches('jsonPayload.n=~"5"', subject)  # only strings match a regular expression
    assert not matches('jsonPayload.n!~"5"', subject)


# -- functions -------------------------------------------------------------------------------------------------------


def test_log_id_matches_the_unescaped_log_id() -> None:
    subject = entry(logName="projects/p/logs/cloudaudit.googleapis.com%2Factivity")
    assert matches('log_id("cloudaudit.googleapis.com/activity")', subject)
    assert matches('LOG_ID("cloudaudit.googleapis.com%2Factivity")', subject)
    assert not matches('log_id("cloudaudit.googleapis.com/data_access")', subject)
    assert not matches('NOT log_id("cloudaudit.googleapis.com/activity")', subject)


def test_ip_in_net() -> None:
    assert matches('ip_in_net(jsonPayload.ip, "1:2::/48")', entry(jsonPayload={"ip": "1:2::7"}))
    assert matches('ip_in_net(jsonPayload.ip, "10.1.2.0/24")', entry(jsonPayload={"ip": "10.1.2.0/25"}))
    assert not matches('ip_in_net(jsonPayload.ip, "10.1.2.0/24")', entry(jsonPayload={"ip": "not an ip"}))
    assert not matches('ip_in_net(httpRequest.remoteIp, "0.0.0.0/0")', entry())  # defaulted: ""
