"""Cloud Run Admin API v2 emulator over REST: what ``run_v2.ServicesClient`` and
``run_v2.RevisionsClient`` (``transport="rest"``) ask for discovery and for a traffic change.

``PATCH`` of a service answers a long-running ``Operation`` that completes after a short reconcile
delay (the service reports ``reconciling`` meanwhile), and the operation can be read back, so
``update_service(...).result()`` behaves as on Google's API. Only traffic changes: the emulator cannot
build a revision from an image, so a changed template is refused rather than silently ignored.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from typing import Any

from cloudrun_smoke.local.json_api import ApiError, JsonApiServer, Request, route
from cloudrun_smoke.local.run_model import (
    Operation,
    RunState,
    Service,
    TrafficTarget,
    parse_traffic,
    revision_json,
    service_json,
)
from cloudrun_smoke.timeutil import utcnow

_LOCATION = "/v2/projects/{project}/locations/{location}"
_SERVICES = _LOCATION + "/services"
_OPERATIONS = _LOCATION + "/operations"

TrafficApplier = Callable[[Service, list[TrafficTarget]], None]


def _assign(service: Service, targets: list[TrafficTarget]) -> None:
    service.traffic = targets


class RunApi:
    def __init__(
        self, state: RunState, apply_traffic: TrafficApplier | None = None, reconcile_delay: float = 0.2
    ) -> None:
        self.state = state
        self.apply_traffic = apply_traffic or _assign
        self.reconcile_delay = reconcile_delay

    def routes(self) -> list:
        return [
            route("GET", _SERVICES, self.list_services),
            route("GET", _SERVICES + "/{service}", self.get_service),
            route("PATCH", _SERVICES + "/{service}", self.update_service),
            route("GET", _SERVICES + "/{service}/revisions", self.list_revisions),
            route("GET", _SERVICES + "/{service}/revisions/{revision}", self.get_revision),
            route("POST", _OPERATIONS + "/{operation}:wait", self.get_operation),
            route("GET", _OPERATIONS + "/{operation}", self.get_operation),
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

    # -- traffic changes -----------------------------------------------------------------------------
    def update_service(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        validate_only = request.query.get("validateOnly", ["false"])[0].lower() == "true"
        with self.state.lock:
            service = self._service(request)
            if service.reconciling:
                raise ApiError(409, f"Service '{service.name}' is being updated; retry when it is done.")
            _refuse_template_change(service, body.get("template"))
            raw = body.get("traffic") or []
            try:
                targets = parse_traffic(service, raw) if raw else list(service.traffic)
            except ValueError as e:
                raise ApiError(400, str(e)) from None
            p = request.params
            operation = Operation(
                f"projects/{p['project']}/locations/{p['location']}/operations/{uuid.uuid4()}",
                metadata=service_json(service),
            )
            self.state.operations[operation.name] = operation
            if validate_only:
                operation.done, operation.response = True, service_json(service)
                return 200, operation.json()
            service.generation += 1
            service.reconciling = True
        if self.reconcile_delay > 0:
            timer = threading.Timer(self.reconcile_delay, self._complete, (service, targets, operation))
            timer.daemon = True
            timer.start()
        else:
            self._complete(service, targets, operation)
        with self.state.lock:
            return 200, operation.json()

    def _complete(self, service: Service, targets: list[TrafficTarget], operation: Operation) -> None:
        with self.state.lock:
            try:
                self.apply_traffic(service, targets)
            except Exception as e:  # the operation carries the failure, as on Google's API
                operation.error = {"code": 13, "message": f"traffic change failed: {e}"}
            service.reconciling = False
            service.update_time = utcnow()
            operation.done, operation.response = True, service_json(service)

    def get_operation(self, request: Request) -> tuple[int, Any]:
        p = request.params
        name = f"projects/{p['project']}/locations/{p['location']}/operations/{p['operation']}"
        with self.state.lock:
            operation = self.state.operations.get(name)
            if operation is None:
                raise ApiError(404, f"Operation '{name}' does not exist.")
            return 200, operation.json()


def _refuse_template_change(service: Service, template: Any) -> None:
    latest = service.latest_created()
    if not isinstance(template, dict) or latest is None:
        return
    images = [c.get("image") for c in template.get("containers") or [] if isinstance(c, dict)]
    if images and images[0] and images[0] != latest.spec.image:
        raise ApiError(
            400,
            f"the local stack cannot build a revision from image {images[0]!r}: only traffic changes are "
            "emulated (deploy revisions with LocalStack.deploy or `cloudrun-smoke local up`)",
        )


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
