"""Persisting preferences into ``memory_preferences``: upsert with a counter, read back, clear.

The two success lines are the public service's own and carry the number of documents read back from
the collection after the upsert, never the number of candidates; a failed upsert logs the public
service's ERROR line instead. Faults that bite here: not persisted, no de-duplication, wrong user, and
the duplicate-id batch that Chroma refuses.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

from emergence_reference import faults as F
from emergence_reference.faults import FaultSet
from emergence_reference.preferences import COLLECTION, Preference, document_id
from emergence_reference.store import now_iso
from emergence_reference.vectors import VectorStore

logger = logging.getLogger(__name__)

WRONG_USER = "default"


class PreferenceStore:
    def __init__(self, vectors: VectorStore, faults: FaultSet) -> None:
        self._vectors = vectors
        self._faults = faults
        self._neighbour_saves = 0  # the neighbours-fail fault fails every second one

    def save(
        self, user_id: str, candidates: list[Preference], *, thread_id: str, session_id: str | None
    ) -> int:
        """Upsert the candidates for the user; returns the documents found stored afterwards."""
        if not candidates or self._faults.on(F.PREFERENCES_NOT_PERSISTED):
            return 0
        owner = WRONG_USER if self._faults.on(F.PREFERENCES_WRONG_USER) else user_id
        batch = list(candidates)
        if self._faults.bites(F.PREFERENCES_UPSERT_FAILS, user_id) or self._neighbour_fails(user_id):
            batch = batch + batch  # the public bug: two candidates with one id in the same upsert
        ids = [self._id(owner, pref) for pref in batch]
        stamp = now_iso()
        try:
            existing = self._vectors.get(COLLECTION, ids=list(dict.fromkeys(ids)))
            known = dict(zip(existing["ids"], existing["metadatas"] or [], strict=False))
            metadatas = [
                self._metadata(owner, pref, known.get(doc_id), thread_id, session_id, stamp)
                for doc_id, pref in zip(ids, batch, strict=True)
            ]
            self._vectors.upsert(COLLECTION, ids, [pref.text for pref in batch], metadatas)
        except Exception as exc:
            logger.error("Vectorisation préférences impossible: %s", exc)
            return 0
        stored = len(self._vectors.get(COLLECTION, ids=list(dict.fromkeys(ids)))["ids"])
        logger.info("%d items ajoutés/mis à jour dans '%s'.", stored, COLLECTION)
        logger.info("%d préférences/intentions vectorisées.", stored)
        return stored

    def _neighbour_fails(self, user_id: str) -> bool:
        if not (self._faults.on(F.NEIGHBOURS_FAIL) and F.is_neighbour(user_id)):
            return False
        self._neighbour_saves += 1
        return self._neighbour_saves % 2 == 0

    def _id(self, owner: str, pref: Preference) -> str:
        doc_id = document_id(owner, pref.type, pref.text)
        if self._faults.on(F.PREFERENCES_NO_DEDUP):
            return f"{doc_id}-{uuid.uuid4().hex[:8]}"
        return doc_id

    @staticmethod
    def _metadata(
        owner: str,
        pref: Preference,
        previous: Any,
        thread_id: str,
        session_id: str | None,
        stamp: str,
    ) -> dict[str, Any]:
        previous = previous or {}
        return {
            "user_id": owner,
            "type": pref.type,
            "topic": pref.topic,
            "confidence": 0.9,
            "thread_id": thread_id,
            "session_id": session_id or "",
            "count": int(previous.get("count", 0)) + 1,
            "created_at": previous.get("created_at", stamp),
            "updated_at": stamp,
        }

    def summary(self, user_id: str) -> dict[str, Any]:
        """What ``/user/stats`` shows under the ``preferences-in-stats`` variant."""
        found = self._vectors.get(COLLECTION, where={"user_id": user_id})
        rows = sorted(
            zip(found["documents"] or [], found["metadatas"] or [], strict=False),
            key=lambda row: (-int(row[1].get("count", 1)), row[0]),
        )
        by_type = Counter(str(meta.get("type")) for _, meta in rows)
        return {
            "total": len(rows),
            "top": [
                {
                    "text": text,
                    "type": meta.get("type"),
                    "topic": meta.get("topic"),
                    "count": meta.get("count"),
                }
                for text, meta in rows[:5]
            ],
            "by_type": dict(by_type),
        }

    def clear(self, user_id: str) -> int:
        return self._vectors.delete(COLLECTION, where={"user_id": user_id})
