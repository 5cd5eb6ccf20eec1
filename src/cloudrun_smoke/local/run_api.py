"""Cloud Run Admin API v2 emulator over REST: what ``run_v2.ServicesClient`` and
``run_v2.RevisionsClient`` (``transport="rest"``) ask for discovery."""

from __future__ import annotations

import base64
from typing import Any

from cloudrun_smoke.local.json_api import ApiError, JsonApiServer, Request, route
from cloudrun_smoke.local.run_model import RunState, Service, revision_json, service_json

_SERVICES = "/v2/projects/{project}/locations/{location}/services"


class RunApi:
    def __init__(self, state: RunState) -> None:
        self.state = state

    def routes(self) -> list:
        return [
            route("GET", _SERVICES, self.list_services),
            route("GET", _SERVICES + "/{service}", self.get_service),
            route("GET", _SERVICES + "/{service}/revisions", self.list_revisions),
            route("GET", _SERVICES + "/{service}/revisions/{revision}", self.get_revision),
        ]

    def serve(self) -> JsonApiServer:
        return JsonApiServer("run-api-emulator", self.routes()).start()

    def _service(self, request: Request) -> Service:
        p = request.params
        name = f"projects/{p['project']}/locations/{p['location']}/services/{p['service']}"
        service = self.state.get(name)
        if service is None:
            raise ApiError(
                404,
                f"Resource '{p['service']}' of kind 'SERVICE' in region '{p['location']}' "
                f"in project '{p['project']}' does not exist.",
            )
        return service

    def list_services(self, request: Request) -> tuple[int, Any]:
        p = request.params
        with self.state.lock:
            items = [service_json(s) for s in self.state.in_location(p["project"], p["location"])]
        return 200, _page(request, items, "services")

    def get_service(self, request: Request) -> tuple[int, Any]:
        with self.state.lock:
            return 200, service_json(self._service(request))

    def list_revisions(self, request: Request) -> tuple[int, Any]:
        with self.state.lock:
            service = self._service(request)
            items = [revision_json(service, r) for r in reversed(service.revisions)]
        return 200, _page(request, items, "revisions")

    def get_revision(self, request: Request) -> tuple[int, Any]:
        with self.state.lock:
            service = self._service(request)
            revision = service.find_revision(request.params["revision"])
            if revision is None:
                raise ApiError(
                    404, f"Resource '{request.params['revision']}' of kind 'REVISION' does not exist."
                )
            return 200, revision_json(service, revision)


def _page(request: Request, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Newest first, as Cloud Run lists; ``pageToken`` is an opaque offset."""
    try:
        size = int(request.query.get("pageSize", ["0"])[0]) or 100
        token = request.query.get("pageToken", [""])[0]
        start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
    except ValueError:
        raise ApiError(400, "pageSize or pageToken is malformed") from None
    body: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return body
