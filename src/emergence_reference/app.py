"""The FastAPI application: factory, lifespan and health routes.

Start-up opens the database and starts the task workers before ``/healthz`` says ready; shutdown (SIGTERM
via uvicorn) cancels the workers and closes the database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from emergence_reference import __version__, memory, threads
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
        logger.info("Start-up complete: ready")
        try:
            yield
        finally:
            await runtime.stop()
            logger.info("Shutdown complete")

    app = FastAPI(title="EmergenceV8 reference service", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(threads.router)
    app.include_router(memory.router)
    _add_health_routes(app)
    return app


def _add_health_routes(app: FastAPI) -> None:
    @app.get("/api/health")
    async def api_health() -> dict[str, Any]:
        """Cloud Run's probe path: ok as soon as the process serves, as in the public service."""
        return {"status": "ok", "message": "Emergence reference service is running"}

    @app.get("/health")
    async def health() -> dict[str, Any]:
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
        if runtime.readiness.ready:
            return JSONResponse({"ok": True})
        return JSONResponse({"ok": False, "error": "starting"}, status_code=503)
