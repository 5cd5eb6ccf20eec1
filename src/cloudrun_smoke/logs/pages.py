"""One ``entries:list`` page through a ``google.cloud.logging.Client``: one HTTP request, one read.

Cloud Logging counts every page request against the project's read quota ("Read requests per
minute", 60 by default), and a search may answer short pages, or pages with no entries but a
``nextPageToken`` ("the search found no log entries so far but it did not have time to search all
the possible log entries. Retry the method with this value for page_token to continue the search":
``ListLogEntriesResponse``, https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list).
``Client.list_entries`` follows those tokens on its own, one request after the other with no pause
and no count (``google.api_core.page_iterator.HTTPIterator`` behind a generator), so every reader here
asks for one page at a time and pays for each before sending it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    entries: list[Any]  # google.cloud.logging_v2 LogEntry objects
    next_token: str | None

    @property
    def unfinished_and_empty(self) -> bool:
        """No entries, but a token: Cloud Logging asks to continue the search."""
        return not self.entries and self.next_token is not None


def list_page(
    client: Any,
    project: str,
    filter_: str,
    *,
    page_size: int,
    token: str | None = None,
    order_by: str = "timestamp asc",
    loggers: dict[str, Any] | None = None,
) -> Page:
    """One ``entries:list`` call on the client's own connection (its credentials, endpoint and
    session), entries parsed as the client parses them."""
    data: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "filter": filter_,
        "orderBy": order_by,
        "pageSize": page_size,
    }
    if token:
        data["pageToken"] = token
    response = client._connection.api_request(method="POST", path="/entries:list", data=data)
    loggers = {} if loggers is None else loggers
    entries = [entry_from_resource(item, client, loggers) for item in response.get("entries", ())]
    return Page(entries, response.get("nextPageToken") or None)


def entry_from_resource(resource: Mapping[str, Any], client: Any, loggers: dict[str, Any]) -> Any:
    """A ``LogEntry`` of the right class for its payload, as ``google.cloud.logging`` builds them."""
    from google.cloud.logging_v2 import entries

    kind = (
        entries.TextEntry
        if "textPayload" in resource
        else entries.StructEntry
        if "jsonPayload" in resource
        else entries.ProtobufEntry
        if "protoPayload" in resource
        else entries.LogEntry
    )
    return kind.from_api_repr(resource, client, loggers=loggers)
