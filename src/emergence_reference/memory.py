"""``/api/memory``: the batch consolidation, the memory gardener, stats, search and clearing.

Shapes and log lines follow the public service, including its quirks the smoke suite must see through:
a thread whose consolidation failed is counted as skipped with ``errors`` left empty, and persisted
preferences are not counted in ``/user/stats``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from emergence_reference import preferences
from emergence_reference.auth import Principal, require_user
from emergence_reference.runtime import Runtime, get_runtime
from emergence_reference.store import now_iso

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/memory", tags=["memory"])

User = Annotated[Principal, Depends(require_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]


class BatchRequest(BaseModel):
    limit: int = 100
    force: bool = False
    user_id: str | None = None


class GardenRequest(BaseModel):
    thread_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None


@router.post("/consolidate-archived")
async def consolidate_archived(body: BatchRequest, user: User, runtime: Rt) -> dict[str, Any]:
    rows = runtime.store.conn.execute(
        "SELECT id, consolidated_at FROM threads WHERE user_id = ? AND archived = 1"
        " ORDER BY updated_at DESC LIMIT ?",
        (user.user_id, max(0, body.limit)),
    ).fetchall()
    logger.info("[consolidate_archived] Processing %d archived threads (force=%s)", len(rows), body.force)
    consolidated = skipped = 0
    for row in rows:
        if row["consolidated_at"] and not body.force:
            skipped += 1
            continue
        try:
            result = await runtime.consolidator.consolidate_thread(row["id"], user.user_id)
        except Exception as exc:  # as in the public code: counted as skipped, errors stays empty
            logger.error("Erreur consolidation thread %s: %s", row["id"], exc)
            skipped += 1
            continue
        consolidated += 1
        logger.info(
            "[consolidate_archived] Thread %s consolidated: %d concepts", row["id"], result.new_concepts
        )
    errors: list[dict[str, str]] = []
    logger.info(
        "[consolidate_archived] Batch completed: %d consolidated, %d skipped, %d errors",
        consolidated,
        skipped,
        len(errors),
    )
    return {
        "status": "success",
        "consolidated_count": consolidated,
        "skipped_count": skipped,
        "total_archived": len(rows),
        "errors": errors,
    }


def _garden_history(runtime: Runtime) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = runtime.__dict__.setdefault("garden_history", [])
    return history


@router.post("/tend-garden")
async def tend_garden(body: GardenRequest, user: User, runtime: Rt) -> dict[str, Any]:
    thread_id = body.thread_id or body.session_id or user.session_id
    thread = runtime.store.get_thread(thread_id, user.user_id) if thread_id else None
    if thread is None:
        report: dict[str, Any] = {
            "status": "success",
            "message": "Aucune session à traiter.",
            "consolidated_sessions": 0,
            "new_concepts": 0,
        }
    else:
        result = await runtime.consolidator.consolidate_thread(thread["id"], user.user_id)
        report = {
            "status": "success",
            "consolidated_sessions": 1,
            "new_concepts": result.new_concepts,
            "preferences_saved": result.preferences_saved,
            "thread_id": thread["id"],
        }
    _garden_history(runtime).append({"user_id": user.user_id, "at": now_iso(), **report})
    return report


@router.get("/tend-garden")
async def garden_history(user: User, runtime: Rt, limit: int = Query(10, ge=1, le=100)) -> dict[str, Any]:
    mine = [
        {k: v for k, v in h.items() if k != "user_id"}
        for h in _garden_history(runtime)
        if h["user_id"] == user.user_id
    ]
    return {"history": mine[-limit:][::-1]}


@router.get("/user/stats")
async def user_stats(user: User, runtime: Rt) -> dict[str, Any]:
    conn = runtime.store.conn
    concepts = conn.execute(
        "SELECT concept_text, mention_count FROM concepts WHERE user_id = ? ORDER BY mention_count DESC, id",
        (user.user_id,),
    ).fetchall()
    threads = conn.execute(
        "SELECT SUM(archived = 1) AS archived, SUM(consolidated_at IS NOT NULL) AS analyzed"
        " FROM threads WHERE user_id = ?",
        (user.user_id,),
    ).fetchone()
    return {
        # As in the public code: stats read another collection, so persisted preferences do not show.
        "preferences": {"total": 0, "top": [], "by_type": {}},
        "concepts": {
            "total": len(concepts),
            "top": [{"concept": r["concept_text"], "count": r["mention_count"]} for r in concepts[:10]],
        },
        "stats": {
            "sessions_analyzed": threads["analyzed"] or 0,
            "threads_archived": threads["archived"] or 0,
        },
    }


@router.get("/search")
async def search_messages(
    user: User, runtime: Rt, q: str = Query(..., min_length=3), limit: int = Query(10, ge=1, le=100)
) -> dict[str, Any]:
    rows = runtime.store.conn.execute(
        "SELECT id, thread_id, role, content, created_at FROM messages WHERE user_id = ? AND instr(lower(content),"
        " lower(?)) > 0 ORDER BY created_at DESC LIMIT ?",
        (user.user_id, q, limit),
    ).fetchall()
    results = [dict(r) for r in rows]
    return {"query": q, "results": results, "count": len(results), "filters": {}}


@router.get("/concepts/search")
async def search_concepts(
    user: User, runtime: Rt, q: str = Query(..., min_length=2), limit: int = Query(10, ge=1, le=100)
) -> dict[str, Any]:
    conn = runtime.store.conn
    words = [w for w in preferences.normalise(q).split() if len(w) >= 2]
    rows = conn.execute(
        "SELECT id, concept_text, first_mentioned_at, last_mentioned_at, mention_count FROM concepts"
        " WHERE user_id = ? ORDER BY mention_count DESC, id",
        (user.user_id,),
    ).fetchall()
    results = []
    for row in rows:
        text = row["concept_text"]
        score = max((1.0 if w == text else 0.8 for w in words if w in text or text in w), default=0.0)
        if score < 0.6:
            continue
        links = conn.execute(
            "SELECT thread_id FROM concept_threads WHERE concept_id = ?", (row["id"],)
        ).fetchall()
        results.append(
            {
                "concept_text": text,
                "first_mentioned_at": row["first_mentioned_at"],
                "last_mentioned_at": row["last_mentioned_at"],
                "thread_ids": [link["thread_id"] for link in links],
                "mention_count": row["mention_count"],
                "similarity_score": score,
            }
        )
    results.sort(key=lambda r: -float(r["similarity_score"]))
    return {"query": q, "results": results[:limit], "count": len(results[:limit])}


async def _clear(user: Principal, runtime: Rt) -> dict[str, Any]:
    conn = runtime.store.conn
    with conn:
        conn.execute(
            "DELETE FROM concept_threads WHERE concept_id IN (SELECT id FROM concepts WHERE user_id = ?)",
            (user.user_id,),
        )
        concepts = conn.execute("DELETE FROM concepts WHERE user_id = ?", (user.user_id,)).rowcount
    prefs = preferences.clear(conn, user.user_id)
    return {"status": "success", "deleted": {"concepts": concepts, "preferences": prefs}}


@router.delete("/clear")
async def clear_memory(user: User, runtime: Rt) -> dict[str, Any]:
    return await _clear(user, runtime)


@router.post("/clear")
async def clear_memory_post(user: User, runtime: Rt) -> dict[str, Any]:
    return await _clear(user, runtime)
