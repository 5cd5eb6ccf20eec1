"""``/api/threads``: conversations, their messages, and the archive hook that feeds long-term memory."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel

from emergence_reference import faults as F
from emergence_reference.auth import Principal, require_user
from emergence_reference.runtime import Runtime, get_runtime
from emergence_reference.tasks import CONSOLIDATE_THREAD, Task

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/threads", tags=["threads"])

User = Annotated[Principal, Depends(require_user)]
Rt = Annotated[Runtime, Depends(get_runtime)]


class ThreadCreate(BaseModel):
    type: Literal["chat", "debate"] = "chat"
    title: str | None = None
    agent_id: str | None = None
    meta: dict[str, Any] | None = None


class ThreadPatch(BaseModel):
    archived: bool | None = None
    title: str | None = None
    agent_id: str | None = None
    meta: dict[str, Any] | None = None


class MessageCreate(BaseModel):
    role: Literal["user", "assistant", "system", "note"]
    content: str
    agent_id: str | None = None
    tokens: int | None = None
    meta: dict[str, Any] | None = None


def _not_found() -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="Thread not found")


def present(thread: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """The thread as the API shows it: ``archived`` 0/1 as in the public code, or a boolean (variant)."""
    if runtime.faults.on(F.ARCHIVED_BOOL):
        return {**thread, "archived": bool(thread["archived"])}
    return thread


@router.post("", status_code=status.HTTP_201_CREATED, include_in_schema=False)
@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_thread(body: ThreadCreate, user: User, runtime: Rt) -> dict[str, Any]:
    thread = runtime.store.create_thread(
        user_id=user.user_id,
        session_id=user.session_id,
        type=body.type,
        title=body.title,
        agent_id=body.agent_id,
        meta=body.meta,
    )
    return {"id": thread["id"], "thread": present(thread, runtime)}


@router.get("/archived/list")
async def list_archived(
    user: User, runtime: Rt, limit: int = Query(20, ge=1, le=500), offset: int = Query(0, ge=0)
) -> dict[str, Any]:
    threads = runtime.store.list_archived(user.user_id, limit=limit, offset=offset)
    return {"items": [present(thread, runtime) for thread in threads]}


@router.get("/{thread_id}")
async def get_thread(thread_id: str, user: User, runtime: Rt) -> dict[str, Any]:
    thread = runtime.store.get_thread(thread_id, user.user_id)
    if thread is None:
        raise _not_found()
    return {
        "thread": present(thread, runtime),
        "messages": runtime.store.list_messages(thread_id),
        "docs": [],
    }


@router.post("/{thread_id}/messages", status_code=status.HTTP_201_CREATED)
async def add_message(thread_id: str, body: MessageCreate, user: User, runtime: Rt) -> dict[str, Any]:
    message = runtime.store.add_message(
        thread_id=thread_id,
        user_id=user.user_id,
        role=body.role,
        content=body.content,
        agent_id=body.agent_id,
        tokens=body.tokens,
        meta=body.meta,
    )
    if message is None:
        raise _not_found()
    return {"message_id": message["id"], "created_at": message["created_at"]}


@router.patch("/{thread_id}")
async def update_thread(thread_id: str, body: ThreadPatch, user: User, runtime: Rt) -> dict[str, Any]:
    changes = {key: getattr(body, key) for key in body.model_fields_set if key != "archived"}
    archived = None if body.archived and runtime.faults.on(F.ARCHIVE_IGNORED) else body.archived
    update = runtime.store.update_thread(thread_id, user.user_id, changes, archived)
    if update is None:
        raise _not_found()
    # rearchive-enqueues: the hook tests the request (archived: true), not the transition.
    if update.archived_now or (body.archived and runtime.faults.on(F.REARCHIVE_ENQUEUES)):
        _enqueue_consolidation(runtime, thread_id, user)
    if body.archived and runtime.faults.on(F.ARCHIVE_SLOW):
        await asyncio.sleep(runtime.faults.value(F.ARCHIVE_SLOW) / 1000)
    return {"thread": present(update.thread, runtime)}


@router.delete("/{thread_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_thread(thread_id: str, user: User, runtime: Rt) -> Response:
    """Soft delete as in the public code (the thread stays readable); hard delete as a variant."""
    if runtime.faults.on(F.HARD_DELETE):
        deleted = runtime.store.hard_delete_thread(thread_id, user.user_id)
    else:
        deleted = runtime.store.soft_delete_thread(thread_id, user.user_id)
    if not deleted:
        raise _not_found()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _enqueue_consolidation(runtime: Runtime, thread_id: str, user: Principal) -> None:
    """The archive hook: hand the thread to the queue; a failure is logged, never returned to the caller."""
    if runtime.faults.on(F.ARCHIVE_NO_ENQUEUE):
        return
    task = Task(CONSOLIDATE_THREAD, {"thread_id": thread_id, "user_id": user.user_id, "reason": "archiving"})
    try:
        runtime.queue.enqueue(task)
    except Exception as exc:
        logger.warning("[Thread Archiving] Failed to enqueue consolidation: %s", exc)
        return
    logger.info("[Thread Archiving] Consolidation enqueued for thread %s", thread_id)
