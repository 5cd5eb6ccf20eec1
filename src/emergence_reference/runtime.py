"""The objects one service process shares between its routes, its workers and its lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from fastapi import Request

from emergence_reference.config import Settings
from emergence_reference.consolidation import Consolidator
from emergence_reference.faults import FaultSet
from emergence_reference.store import Store
from emergence_reference.tasks import TaskQueue, memory_handlers

logger = logging.getLogger(__name__)


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
    queue: TaskQueue
    consolidator: Consolidator
    readiness: Readiness = field(default_factory=Readiness)

    @property
    def faults(self) -> FaultSet:
        return self.settings.faults

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        store = Store(settings.data_dir)
        consolidator = Consolidator(store)
        queue = TaskQueue(memory_handlers(consolidator), workers=settings.workers)
        return cls(settings=settings, store=store, queue=queue, consolidator=consolidator)

    async def start(self) -> None:
        self.store.open()
        self.readiness.db = True
        # No embedding model nor vector store in v0: nothing to load, so they are ready at once.
        self.readiness.embed = True
        self.readiness.vector = True
        await self.queue.start()
        self.readiness.di = True

    async def stop(self) -> None:
        self.readiness = Readiness()
        await self.queue.stop()
        self.store.close()


def get_runtime(request: Request) -> Runtime:
    """FastAPI dependency: the runtime of the app serving the request."""
    runtime: Runtime = request.app.state.runtime
    return runtime
