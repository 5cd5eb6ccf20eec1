"""``/api/memory``: the batch consolidation, the memory gardener, stats, search and clearing.

Shapes and log lines follow the public service, including its quirks the smoke suite must see through:
a thread whose consolidation failed is counted as skipped with ``errors`` left empty, and persisted
preferences are not counted in ``/user/stats`` (unless the ``preferences-in-stats`` variant is on).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from emergence_reference import faults as F
from emergence_reference import preferences
from emergence_reference.auth import BYPASS_ROLE, Principal, require_user
from emergence_reference.consolidation import VECTOR_WAIT_SECONDS
from emergence_reference.runtime import Runtime, get_runtime
from emergence_reference.store import now_iso

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/memory", tags=["memory"])

User = Annotated[Principal, Depends(require_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]
NOTHING_TO_DO = "Aucune session à traiter."


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
    """Consolidate the user's archived threads; ``user_id`` in the body is honoured for admins only."""
    faults = runtime.faults
    owner = body.user_id if body.user_id and user.role == BYPASS_ROLE else user.user_id
    limit = None if faults.on(F.BATCH_IGNORES_LIMIT) else max(0, body.limit)
    force = body.force or faults.on(F.BATCH_RECONSOLIDATES)
    rows = runtime.store.archived_for_batch(owner, limit)
    logger.info("[consolidate_archived] Processing %d archived threads (force=%s)", len(rows), body.force)
    consolidated = skipped = 0
    for row in rows:
        if row["consolidated_at"] and not force:
            skipped += 1
            continue
        try:
            result = await runtime.consolidator.consolidate_thread(row["id"], owner)
        except Exception as exc:  # as in the public code: counted as skipped, errors stays empty
            logger.error("Erreur consolidation thread %s: %s", row["id"], exc)
            skipped += 1
            continue
        if result.error is not None:  # already logged by the consolidator; skipped, as in the public code
            skipped += 1
            continue
        consolidated += 1
        logger.info(
            "[consolidate_archived] Thread %s consolidated: %d concepts", row["id"], result.new_concepts
        )
    errors: list[dict[str, str]] = []
    # batch-log-disagrees: an off-by-one in the summary line only; the response stays right.
    logged = consolidated + (1 if faults.on(F.BATCH_LOG_DISAGREES) else 0)
    logger.info(
        "[consolidate_archived] Batch completed: %d consolidated, %d skipped, %d errors",
        logged,
        skipped,
        len(errors),
    )
    response: dict[str, Any] = {
        "status": "success",
        "consolidated_count": consolidated,
        "skipped_count": skipped,
        "total_archived": len(rows) + (1 if faults.on(F.BATCH_COUNTS_OFF) else 0),
        "errors": errors,
    }
    if faults.on(F.BATCH_MISSING_FIELD):
        del response["skipped_count"]
    return response


def _server_error(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_500_INTERNAL_SERVER_ERROR, detail=detail)


@router.post("/tend-garden")
async def tend_garden(body: GardenRequest, user: User, runtime: Rt) -> dict[str, Any]:
    """The gardener: a targeted consolidation with ``thread_id``, else the session's thread.

    As observed in the public code: ``{}`` with a session that is not a thread is a no-op, and ``{}``
    without a session, for a user with active threads, is a 500.
    """
    if runtime.faults.on(F.TEND_GARDEN_500):
        logger.error("[MemoryGardener] tend_garden failed: gardener state unavailable")
        raise _server_error("Memory gardener error: gardener state unavailable")
    session = body.session_id or user.session_id
    thread_id = body.thread_id or session
    thread = runtime.store.get_thread(thread_id, user.user_id) if thread_id else None
    if thread is None and body.thread_id:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="Thread not found")
    if thread is None:
        if not session and runtime.store.count_active_threads(user.user_id):
            raise _server_error("Memory gardener error: no session to tend for the active threads")
        report: dict[str, Any] = {
            "status": "success",
            "message": NOTHING_TO_DO,
            "consolidated_sessions": 0,
            "new_concepts": 0,
        }
    else:
        result = await runtime.consolidator.consolidate_thread(thread["id"], user.user_id)
        if result.error is not None:
            raise _server_error(f"Memory gardener error: {result.error}")
        report = {
            "status": "success",
            "consolidated_sessions": 1,
            "new_concepts": result.new_concepts,
            "new_preferences": result.preferences_saved,
            "thread_id": thread["id"],
        }
    runtime.garden_history.append({"user_id": user.user_id, "at": now_iso(), **report})
    return report


@router.get("/tend-garden")
async def garden_history(user: User, runtime: Rt, limit: int = Query(10, ge=1, le=100)) -> dict[str, Any]:
    mine = [
        {k: v for k, v in h.items() if k != "user_id"}
        for h in runtime.garden_history
        if h["user_id"] == user.user_id
    ]
    return {"history": mine[-limit:][::-1]}


async def _vectors_ready(runtime: Runtime) -> None:
    await runtime.vectors.wait_ready(VECTOR_WAIT_SECONDS)


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
    if runtime.faults.on(F.PREFERENCES_IN_STATS):
        await _vectors_ready(runtime)
        prefs = await asyncio.to_thread(runtime.preferences.summary, user.user_id)
    else:
        # As in the public code: stats read another collection, so persisted preferences do not show.
        prefs = {"total": 0, "top": [], "by_type": {}}
    return {
        "preferences": prefs,
        "concepts": {
            "total": len(concepts),
            "top": [{"concept": r["concept_text"], "count": r["mention_count"]} for r in concepts[:10]],
        },
        "stats": {
            "sessions_analyzed": threads["analyzed"] or 0,
            "threads_archived": threads["archived"] or 0,
        },
    }


def _messages_matching(runtime: Runtime, user: Principal, q: str, limit: int) -> list[dict[str, Any]]:
    """A substring search over message text, scoped to the caller (``search-leaks``: every user's)."""
    scoped = not runtime.faults.on(F.SEARCH_LEAKS)
    rows = runtime.store.conn.execute(
        "SELECT id, thread_id, user_id, role, content, created_at FROM messages"
        " WHERE (? = 0 OR user_id = ?) AND instr(lower(content), lower(?)) > 0 ORDER BY created_at DESC LIMIT ?",
        (int(scoped), user.user_id, q, limit),
    ).fetchall()
    return [dict(r) for r in rows]


@router.get("/search")
async def search_messages(
    user: User, runtime: Rt, q: str = Query(..., min_length=3), limit: int = Query(10, ge=1, le=100)
) -> dict[str, Any]:
    results = _messages_matching(runtime, user, q, limit)
    return {"query": q, "results": results, "count": len(results), "filters": {}}


def _concepts_matching(runtime: Runtime, user: Principal, q: str, limit: int) -> list[dict[str, Any]]:
    """The caller's concepts close to the query: 1.0 for a word equal to the concept, 0.8 when one
    contains the other, nothing under the public service's 0.6 threshold.

    ``memory-forgets``: the search reads an index the consolidation never writes, so it finds nothing
    although the concepts are stored (and counted in /user/stats)."""
    if runtime.faults.on(F.MEMORY_FORGETS):
        return []
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
    return results[:limit]


@router.get("/concepts/search")
async def search_concepts(
    user: User, runtime: Rt, q: str = Query(..., min_length=2), limit: int = Query(10, ge=1, le=100)
) -> dict[str, Any]:
    results = _concepts_matching(runtime, user, q, limit)
    return {"query": q, "results": results, "count": len(results)}


@router.get("/search/unified")
async def search_unified(
    user: User, runtime: Rt, q: str = Query(..., min_length=3), limit: int = Query(10, ge=1, le=100)
) -> dict[str, Any]:
    """Every kind of memory for the caller; always scoped, as in the public code."""
    concepts = _concepts_matching(runtime, user, q, limit)
    threads = runtime.store.conn.execute(
        "SELECT id, title, type, archived, updated_at FROM threads"
        " WHERE user_id = ? AND instr(lower(coalesce(title, '')), lower(?)) > 0 ORDER BY updated_at DESC LIMIT ?",
        (user.user_id, q, limit),
    ).fetchall()
    messages = runtime.store.conn.execute(
        "SELECT id, thread_id, role, content, created_at FROM messages"
        " WHERE user_id = ? AND instr(lower(content), lower(?)) > 0 ORDER BY created_at DESC LIMIT ?",
        (user.user_id, q, limit),
    ).fetchall()
    found = {
        "stm_summaries": [],
        "ltm_concepts": concepts,
        "threads": [dict(r) for r in threads],
        "messages": [dict(r) for r in messages],
    }
    return {**found, "total_results": sum(len(v) for v in found.values())}


async def _clear(user: Principal, runtime: Runtime) -> dict[str, Any]:
    """The caller's concepts (SQLite) and preferences (``memory_preferences``); threads stay."""
    conn = runtime.store.conn
    with conn:
        conn.execute(
            "DELETE FROM concept_threads WHERE concept_id IN (SELECT id FROM concepts WHERE user_id = ?)",
            (user.user_id,),
        )
        concepts = conn.execute("DELETE FROM concepts WHERE user_id = ?", (user.user_id,)).rowcount
    await _vectors_ready(runtime)
    prefs = await asyncio.to_thread(runtime.preferences.clear, user.user_id)
    logger.info("Memory cleared for user %s: %d concepts, %d preferences", user.user_id, concepts, prefs)
    return {"status": "success", "deleted": {"concepts": concepts, "preferences": prefs}}


@router.delete("/clear")
async def clear_memory(user: User, runtime: Rt) -> dict[str, Any]:
    return await _clear(user, runtime)


@router.post("/clear")
async def clear_memory_post(user: User, runtime: Rt) -> dict[str, Any]:
    return await _clear(user, runtime)
