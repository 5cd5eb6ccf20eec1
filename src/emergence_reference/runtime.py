"""The objects one service process shares between its routes, its workers and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from emergence_reference import faults as F
from emergence_reference.ballast import Ballast
from emergence_reference.burner import Burner
from emergence_reference.config import Settings
from emergence_reference.consolidation import Consolidator
from emergence_reference.faults import FaultSet
from emergence_reference.preference_store import PreferenceStore
from emergence_reference.preferences import COLLECTION
from emergence_reference.store import Store
from emergence_reference.tasks import TaskQueue, memory_handlers
from emergence_reference.vectors import VectorStore

logger = logging.getLogger(__name__)

# Cloud Run sends SIGKILL 10 s after SIGTERM; the drain leaves room for the rest of the shutdown.
DRAIN_SECONDS = 7.0


@dataclass
class Readiness:
    """What ``/healthz`` reports; the process is ready only once every part has come up."""

    db: bool = False
    embed: bool = False
    vector: bool = False
    di: bool = False

    @property
    def ready(self) -> bool:
        return self.db and self.embed and self.vector and self.di


@dataclass
class Runtime:
    settings: Settings
    store: Store
    vectors: VectorStore
    preferences: PreferenceStore
    queue: TaskQueue
    consolidator: Consolidator
    garden_history: list[dict[str, Any]] = field(default_factory=list)
    _opening: asyncio.Task[None] | None = None
    _ballast: Ballast | None = None
    _burner: Burner | None = None
    _stopped: bool = False

    @property
    def faults(self) -> FaultSet:
        return self.settings.faults

    @property
    def readiness(self) -> Readiness:
        """Read from the components themselves, so it can never claim more than they do."""
        if self._stopped:
            return Readiness()
        return Readiness(
            db=self.store.is_open,
            # The embedding function is local and needs no model: it is usable as soon as the
            # collection that carries it is open.
            embed=self.vectors.ready,
            vector=self.vectors.ready and not self.faults.on(F.HEALTHZ_NOT_READY),
            di=self.queue.running,
        )

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        store = Store(settings.data_dir, settings.database_path)
        vectors = VectorStore(settings.data_dir, settings.chroma_host, settings.chroma_port)
        preferences = PreferenceStore(vectors, settings.faults)
        consolidator = Consolidator(store, preferences, vectors, settings.faults)
        queue = TaskQueue(memory_handlers(consolidator, settings.faults), workers=settings.workers)
        if settings.faults.on(F.ENQUEUE_FAILS):
            queue.refuse = "the task queue is full (maxsize reached)"
        return cls(settings, store, vectors, preferences, queue, consolidator)

    async def start(self) -> None:
        if self.faults.on(F.SHUTDOWN_DROPS_QUEUE):
            # Installed after uvicorn's own handler (the lifespan runs inside its signal capture): the
            # process ends at once, so whatever the queue holds is lost without a line.
            signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
        self.store.open()
        await self.queue.start()
        # ChromaDB opens in the background: the server listens meanwhile, /healthz says when it is done.
        self._opening = asyncio.create_task(self.vectors.open([COLLECTION]), name="vector-store-open")
        if self.faults.on(F.MEMORY_CREEP):
            self._ballast = Ballast(self.faults.value(F.MEMORY_CREEP)).start()
        if self.faults.on(F.CPU_BURN):
            self._burner = Burner(self.faults.value(F.CPU_BURN)).start()

    async def stop(self) -> None:
        self._stopped = True
        if self._ballast is not None:
            self._ballast.stop()
        if self._burner is not None:
            self._burner.stop()
        await self.queue.stop(DRAIN_SECONDS if self.faults.on(F.SHUTDOWN_DRAINS) else 0.0)
        if self._opening is not None:
            with contextlib.suppress(Exception):
                await self._opening
        self.vectors.close()
        self.store.close()


def get_runtime(request: Request) -> Runtime:
    """FastAPI dependency: the runtime of the app serving the request."""
    runtime: Runtime = request.app.state.runtime
    return runtime
