"""The ChromaDB store and its collection ``memory_preferences``: embedded, or a Chroma server.

Embedded (the public configuration) the store lives under the data directory, one per instance; with
``CHROMA_HOST`` every instance talks to the same Chroma server over HTTP, so what one instance saved
the others read.

ChromaDB takes about a second to import, so it is opened in a worker thread after the server listens:
``/api/health`` answers at once (as the public service does) and ``/healthz`` says ``vector: false``
until the collection is open. Telemetry is off (setting and environment) and the collection always gets
the local :class:`~emergence_reference.embedding.HashedBagOfWords`, so nothing is downloaded or sent.

Every call goes through one lock: routes and queue workers call from different threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHROMA_DIRNAME = "chroma"
# Read by chromadb's settings at import: belt and braces with Settings(anonymized_telemetry=False).
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


class VectorStoreNotReadyError(RuntimeError):
    pass


class VectorStore:
    def __init__(self, data_dir: Path, host: str | None = None, port: int = 8000) -> None:
        self.path = data_dir / CHROMA_DIRNAME
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._ready = asyncio.Event()
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def open(self, names: Sequence[str]) -> None:
        """Open the store and its collections off the event loop; ``ready`` once done."""
        try:
            await asyncio.to_thread(self._open, names)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            logger.error("Vector store unavailable: %s", self.error)
            return
        self._ready.set()
        logger.info("Vector store opened: %s (collections: %s)", self.where, ", ".join(names))

    @property
    def where(self) -> str:
        return f"http://{self.host}:{self.port}" if self.host else str(self.path)

    def _open(self, names: Sequence[str]) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        from emergence_reference.embedding import HashedBagOfWords

        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        client: Any
        if self.host:
            client = chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(self.path), settings=settings)
        with self._lock:
            self._client = client
            for name in names:
                self._collections[name] = client.get_or_create_collection(
                    name, embedding_function=HashedBagOfWords(), metadata={"hnsw:space": "cosine"}
                )

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise VectorStoreNotReadyError(self.error or "the vector store is not open yet") from None

    def _collection(self, name: str) -> Any:
        if not self.ready:
            raise VectorStoreNotReadyError(self.error or "the vector store is not open yet")
        return self._collections[name]

    # Each operation is synchronous; callers run it with ``asyncio.to_thread``.

    def get(
        self, name: str, ids: Sequence[str] | None = None, where: Mapping[str, Any] | None = None
    ) -> dict:
        with self._lock:
            result: dict = self._collection(name).get(
                ids=list(ids) if ids is not None else None, where=dict(where) if where else None
            )
            return result

    def upsert(
        self, name: str, ids: Sequence[str], documents: Sequence[str], metadatas: Sequence[Mapping[str, Any]]
    ) -> None:
        with self._lock:
            self._collection(name).upsert(
                ids=list(ids), documents=list(documents), metadatas=[dict(m) for m in metadatas]
            )

    def delete(self, name: str, where: Mapping[str, Any]) -> int:
        with self._lock:
            collection = self._collection(name)
            ids = collection.get(where=dict(where))["ids"]
            if ids:
                collection.delete(ids=ids)
            return len(ids)

    def count(self, name: str) -> int:
        with self._lock:
            return int(self._collection(name).count())

    def close(self) -> None:
        with self._lock:
            self._collections.clear()
            self._client = None
