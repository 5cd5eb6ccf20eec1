"""Every catalogue pattern agrees with itself: each form matches its example line, captures the fields
the checks correlate on, and its search text (what narrows a read on the server) is in the example,
so a read narrowed by it cannot miss a line the form would match."""

from __future__ import annotations

import pytest

from cloudrun_smoke.logs.patterns import CATALOGUE, SUBJECT_FIELDS, LogPattern, catalogue_with
from cloudrun_smoke.window.logs import APP_PATTERNS, search_terms

FORMS = [
    pytest.param(p, index, id=f"{name}[{index}]")
    for name, p in CATALOGUE.items()
    for index in range(len(p.forms))
]


@pytest.mark.parametrize(("p", "index"), FORMS)
def test_each_form_matches_its_example_and_its_search_text_is_in_it(p: LogPattern, index: int) -> None:
    assert len(p.search) == len(p.examples) == len(p.forms), "one search text and one example per form"
    form, search, example = p.forms[index], p.search[index], p.examples[index]
    assert form.search(example), f"{form.pattern!r} does not match its example {example!r}"
    assert search and search in example, f"search text {search!r} is not in {example!r}"
    # The search text is a literal part of the form: the regex matches it where it stands in the example.
    start = example.index(search)
    assert form.search(example).start() <= start < form.search(example).end()


@pytest.mark.parametrize(("p", "index"), FORMS)
def test_each_example_captures_the_subject_fields_its_form_names(p: LogPattern, index: int) -> None:
    form = p.forms[index]
    fields = p.match(p.examples[index])
    assert fields is not None
    assert {f for f in SUBJECT_FIELDS if f in form.groupindex} <= set(fields)


def test_every_pattern_the_window_reads_has_search_text() -> None:
    terms = search_terms(CATALOGUE[name] for name in APP_PATTERNS)
    assert terms is not None
    assert all(any(t in e for t in terms) for name in APP_PATTERNS for e in CATALOGUE[name].examples)


def test_a_pattern_replaced_per_environment_has_no_search_text() -> None:
    replaced = catalogue_with({"archive.enqueued": [r"queued (?P<thread_id>\w+)"]})["archive.enqueued"]
    assert replaced.search == () and replaced.examples == ()
