"""Every fixture names its source and is a valid payload of its API type: parsed strictly (an unknown
field fails) by the same protobuf messages Google's clients use, so no field is made up."""

from __future__ import annotations

import json

import pytest
from google.cloud import monitoring_v3, run_v2
from google.cloud.logging_v2.types import ListLogEntriesResponse, LogEntry
from google.longrunning import operations_pb2
from google.protobuf import json_format

from helpers.shapes import all_names, load

TYPES = {
    "run_service_": run_v2.Service,
    "run_revision_": run_v2.Revision,
    "log_entry_": LogEntry,
    "entries_list_": ListLogEntriesResponse,
    "ts_": monitoring_v3.ListTimeSeriesResponse,
}


def test_there_is_a_fixture_for_every_response_the_harness_reads() -> None:
    names = all_names()
    assert len(names) >= 15, names
    for prefix in (*TYPES, "run_operation_"):
        assert any(n.startswith(prefix) for n in names), f"no fixture of kind {prefix}*"


@pytest.mark.parametrize("name", all_names())
def test_fixture_names_its_source_and_parses_strictly(name: str) -> None:
    fixture = load(name)
    assert len(fixture.source) > 40 and ("http" in fixture.source or ".proto" in fixture.source), (
        fixture.source
    )
    if name.startswith("run_operation_"):
        operation = json_format.Parse(fixture.text(), operations_pb2.Operation())
        service = run_v2.Service.pb()()
        assert operation.metadata.Unpack(service), "metadata is a google.cloud.run.v2.Service"
        if operation.done:
            assert operation.response.Unpack(run_v2.Service.pb()())
        return
    [kind] = [t for prefix, t in TYPES.items() if name.startswith(prefix)]
    message = kind.from_json(fixture.text())  # ignore_unknown_fields=False: strict
    # And back: what the message holds is what the fixture says (no silently dropped value).
    assert (
        json.loads(
            kind.to_json(message, use_integers_for_enums=False, always_print_fields_with_no_presence=False)
        )
        == fixture.payload
    )
