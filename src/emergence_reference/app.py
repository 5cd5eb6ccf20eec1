"""The FastAPI application: factory, lifespan, health routes and the transient-503 middleware.

Start-up opens the database and starts the task workers, then opens the vector store in the background:
the process serves ``/api/health`` at once and ``/healthz`` says ready once every component is up.
Shutdown (SIGTERM via uvicorn) cancels the workers and closes both stores.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from emergence_reference import __version__, auth, memory, threads
from emergence_reference import faults as F
from emergence_reference.config import Settings
from emergence_reference.runtime import Runtime, get_runtime

logger = logging.getLogger(__name__)

Rt = Annotated[Runtime, Depends(get_runtime)]


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info(
            "Reference service %s starting (service=%s, revision=%s, configuration=%s, faults=%s)",
            __version__,
            settings.service,
            settings.revision,
            settings.configuration,
            settings.faults.describe(),
        )
        logger.info("Data directory: %s", settings.data_dir)
        await runtime.start()
        logger.info("Start-up complete: serving (vector store opening in the background)")
        try:
            yield
        finally:
            await runtime.stop()
            logger.info("Shutdown complete")

    app = FastAPI(title="EmergenceV8 reference service", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    if settings.faults.on(F.TRANSIENT_503):
        _add_transient_503(app, int(settings.faults.value(F.TRANSIENT_503)))
    if settings.faults.on(F.SLOW_READS):
        _add_slow_reads(app, settings.faults.value(F.SLOW_READS) / 1000)
    if settings.faults.on(F.SERVER_ERRORS):
        _add_server_errors(app, settings.faults.value(F.SERVER_ERRORS))
    if settings.faults.on(F.LATENCY_FACTOR):
        _add_latency_factor(app, settings.faults.value(F.LATENCY_FACTOR))
    app.include_router(auth.router)
    app.include_router(threads.router)
    app.include_router(memory.router)
    _add_health_routes(app)
    return app


def _add_transient_503(app: FastAPI, every: int) -> None:
    """One request in ``every`` answers 503 before any route runs: provably not processed, so a
    client may retry it, as after a Cloud Run instance's transient unavailability."""
    count = 0

    @app.middleware("http")
    async def transient_503(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        nonlocal count
        count += 1
        if every > 0 and count % every == 0:
            return JSONResponse({"detail": "Service temporarily unavailable"}, status_code=503)
        return await call_next(request)


def _add_slow_reads(app: FastAPI, delay: float) -> None:
    """Every GET answers ``delay`` s late, as behind a slow read path; writes are not delayed."""

    @app.middleware("http")
    async def slow_reads(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method == "GET":
            await asyncio.sleep(delay)
        return await call_next(request)


def _add_server_errors(app: FastAPI, share: float) -> None:
    """One /api/ request in ``round(1 / share)`` answers 500, as a release with a failing code path;
    the health endpoints answer as usual (Cloud Run's probes keep the revision serving). A plain ASGI
    middleware: ``@app.middleware`` costs every request milliseconds on a busy machine, which the
    regression checks would see as a slower release."""
    if share > 0:
        app.add_middleware(_ServerErrors, every=max(1, round(1 / share)))


class _ServerErrors:
    def __init__(self, app: Any, every: int) -> None:
        self.app, self.every, self.count = app, every, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith("/api/") and path != "/api/health":
            self.count += 1
            if self.count % self.every == 0:
                logger.error("Unhandled error on %s %s (server-errors fault)", scope.get("method"), path)
                response = JSONResponse({"detail": "Internal Server Error"}, status_code=500)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _add_latency_factor(app: FastAPI, factor: float) -> None:
    """Every answer is held back until ``factor`` times the time the service took to make it has passed:
    a release that is uniformly slower, whatever the endpoint (the regression checks' latency figures).
    Added last, so that it runs first and times the other faults' delays too."""

    @app.middleware("http")
    async def latency_factor(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        await asyncio.sleep(max(0.0, (factor - 1.0) * (time.perf_counter() - started)))
        return response


def _add_health_routes(app: FastAPI) -> None:
    @app.get("/api/health")
    async def api_health(runtime: Rt) -> JSONResponse:
        """Cloud Run's probe path: ok as soon as the process serves, as in the public service."""
        if runtime.faults.on(F.API_HEALTH_503):
            return JSONResponse({"status": "error", "message": "Service unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "message": "Emergence reference service is running"})

    @app.get("/health")
    async def health(runtime: Rt) -> dict[str, Any]:
        if runtime.faults.on(F.HEALTH_OK):
            return {"status": "ok"}
        return {"status": "healthy", "metrics_enabled": False}

    @app.get("/healthz")
    async def healthz(runtime: Rt) -> JSONResponse:
        readiness = runtime.readiness
        body = {
            "ok": readiness.ready,
            "status": "ready" if readiness.ready else "starting",
            "db": readiness.db,
            "embed": readiness.embed,
            "vector": readiness.vector,
            "di": readiness.di,
        }
        return JSONResponse(body, status_code=200 if readiness.ready else 503)

    @app.get("/ready")
    async def ready(runtime: Rt) -> JSONResponse:
        readiness = runtime.readiness
        if readiness.ready:
            return JSONResponse({"ok": True})
        missing = [name for name in ("db", "embed", "vector", "di") if not getattr(readiness, name)]
        error = runtime.vectors.error or f"starting: {', '.join(missing)} not ready"
        return JSONResponse({"ok": False, "error": error}, status_code=503)
