"""SQLite persistence: threads, messages and the long-term concepts consolidated from them.

One connection, used only from the event loop's thread: every statement is short and local, so the
routes and the task workers call it directly and never interleave inside a transaction. The file is in
WAL mode so that tests (and the local stack) can read it while the service writes. With
``DATABASE_URL`` several instances share one file: each write transaction takes the write lock at
``BEGIN IMMEDIATE`` and waits up to the busy timeout for it, so no transaction fails half-way on a
lock another process holds.

Schema of ``<data dir>/emergence.db`` (other tests query it directly; keep it stable):

- ``threads(id, session_id, user_id, type, title, agent_id, meta, archived, archival_reason,
  created_at, updated_at, consolidated_at)`` — ``meta`` is JSON text, ``archived`` 0/1.
- ``messages(id, thread_id, user_id, role, content, agent_id, tokens, meta, created_at)``.
- ``concepts(id, user_id, concept_text, origin_thread_id, first_mentioned_at, last_mentioned_at,
  mention_count)`` — one row per (user, concept); ``origin_thread_id`` is the thread whose
  consolidation inserted it, so "new concepts of a thread" is ``WHERE origin_thread_id = ?``.
- ``concept_threads(concept_id, thread_id, linked_at)`` — every thread a concept was found in.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DB_FILENAME = "emergence.db"
BUSY_TIMEOUT_S = 5.0  # how long a statement waits for a lock another instance holds

SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    id              TEXT PRIMARY KEY,
    session_id      TEXT,
    user_id         TEXT NOT NULL,
    type            TEXT NOT NULL,
    title           TEXT,
    agent_id        TEXT,
    meta            TEXT,
    archived        INTEGER NOT NULL DEFAULT 0,
    archival_reason TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    consolidated_at TEXT
);
CREATE INDEX IF NOT EXISTS idx_threads_user ON threads(user_id, archived);

CREATE TABLE IF NOT EXISTS messages (
    id         TEXT PRIMARY KEY,
    thread_id  TEXT NOT NULL REFERENCES threads(id),
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    agent_id   TEXT,
    tokens     INTEGER,
    meta       TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_messages_thread ON messages(thread_id);

CREATE TABLE IF NOT EXISTS concepts (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            TEXT NOT NULL,
    concept_text       TEXT NOT NULL,
    origin_thread_id   TEXT NOT NULL,
    first_mentioned_at TEXT NOT NULL,
    last_mentioned_at  TEXT NOT NULL,
    mention_count      INTEGER NOT NULL DEFAULT 1,
    UNIQUE (user_id, concept_text)
);
CREATE INDEX IF NOT EXISTS idx_concepts_origin ON concepts(origin_thread_id);

CREATE TABLE IF NOT EXISTS concept_threads (
    concept_id INTEGER NOT NULL REFERENCES concepts(id),
    thread_id  TEXT NOT NULL,
    linked_at  TEXT NOT NULL,
    PRIMARY KEY (concept_id, thread_id)
);
"""

_THREAD_COLUMNS = (
    "id, session_id, user_id, type, title, agent_id, meta, archived, archival_reason, "
    "created_at, updated_at, consolidated_at"
)
_MESSAGE_COLUMNS = "id, thread_id, user_id, role, content, agent_id, tokens, meta, created_at"
_EDITABLE_THREAD_FIELDS = ("title", "agent_id", "meta")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
    return uuid.uuid4().hex


class StoreClosedError(RuntimeError):
    """The store was used before ``open()`` or after ``close()``."""


@dataclass(frozen=True)
class ThreadUpdate:
    thread: dict[str, Any]
    archived_now: bool
    """True only when this update moved the thread from not archived to archived."""


@dataclass(frozen=True)
class ConceptWrite:
    """What the database reported for one consolidation (row counts, not intentions)."""

    new_concepts: int
    new_links: int
    consolidated_at: str | None


class Store:
    def __init__(self, data_dir: Path, path: Path | None = None) -> None:
        self.path = path or data_dir / DB_FILENAME
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # IMMEDIATE: a transaction that reads then writes cannot lose its snapshot to another instance.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level="IMMEDIATE")
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")  # before WAL: it waits too
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(SCHEMA)
        self._conn = conn
        logger.info("Store opened: %s", self.path)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            logger.info("Store closed: %s", self.path)

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError("the store is not open")
        return self._conn

    # -- threads -----------------------------------------------------------------------------------

    def create_thread(
        self,
        *,
        user_id: str,
        session_id: str | None,
        type: str,
        title: str | None,
        agent_id: str | None,
        meta: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        thread_id = new_id()
        stamp = now_iso()
        with self.conn:
            self.conn.execute(
                "INSERT INTO threads (id, session_id, user_id, type, title, agent_id, meta, archived,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (thread_id, session_id, user_id, type, title, agent_id, _dump(meta), stamp, stamp),
            )
        return self._require_thread(thread_id)

    def get_thread(self, thread_id: str, user_id: str) -> dict[str, Any] | None:
        """The thread if it exists and belongs to ``user_id`` (threads are scoped to their user)."""
        row = self.conn.execute(
            f"SELECT {_THREAD_COLUMNS} FROM threads WHERE id = ? AND user_id = ?", (thread_id, user_id)
        ).fetchone()
        return _thread(row) if row else None

    def update_thread(
        self, thread_id: str, user_id: str, changes: Mapping[str, Any], archived: bool | None
    ) -> ThreadUpdate | None:
        if self.get_thread(thread_id, user_id) is None:
            return None
        stamp = now_iso()
        archived_now = False
        with self.conn:
            fields = {key: value for key, value in changes.items() if key in _EDITABLE_THREAD_FIELDS}
            if "meta" in fields:
                fields["meta"] = _dump(fields["meta"])
            if fields:
                assignments = ", ".join(f"{key} = ?" for key in fields)
                self.conn.execute(
                    f"UPDATE threads SET {assignments}, updated_at = ? WHERE id = ?",
                    (*fields.values(), stamp, thread_id),
                )
            if archived is True:
                # The WHERE clause makes the transition itself the test: only one update can win it.
                cursor = self.conn.execute(
                    "UPDATE threads SET archived = 1, updated_at = ? WHERE id = ? AND archived = 0",
                    (stamp, thread_id),
                )
                archived_now = cursor.rowcount == 1
            elif archived is False:
                self.conn.execute(
                    "UPDATE threads SET archived = 0, archival_reason = NULL, updated_at = ? WHERE id = ?",
                    (stamp, thread_id),
                )
        return ThreadUpdate(self._require_thread(thread_id), archived_now)

    def soft_delete_thread(self, thread_id: str, user_id: str) -> bool:
        """Mark the thread archived with reason ``user_deleted``; it stays readable (as in the public code)."""
        with self.conn:
            cursor = self.conn.execute(
                "UPDATE threads SET archived = 1, archival_reason = 'user_deleted', updated_at = ?"
                " WHERE id = ? AND user_id = ?",
                (now_iso(), thread_id, user_id),
            )
        return cursor.rowcount == 1

    def hard_delete_thread(self, thread_id: str, user_id: str) -> bool:
        """Remove the thread and its messages (the ``hard-delete`` variant); concepts stay the user's."""
        with self.conn:
            if self.get_thread(thread_id, user_id) is None:
                return False
            self.conn.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
            self.conn.execute("DELETE FROM concept_threads WHERE thread_id = ?", (thread_id,))
            self.conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
        return True

    def list_archived(self, user_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT {_THREAD_COLUMNS} FROM threads WHERE user_id = ? AND archived = 1"
            " ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
            (user_id, limit, offset),
        ).fetchall()
        return [_thread(row) for row in rows]

    def archived_for_batch(self, user_id: str, limit: int | None) -> list[sqlite3.Row]:
        """The user's archived threads, most recent first; ``limit`` None means all of them."""
        return self.conn.execute(
            "SELECT id, consolidated_at FROM threads WHERE user_id = ? AND archived = 1"
            " ORDER BY updated_at DESC, id LIMIT ?",
            (user_id, -1 if limit is None else limit),
        ).fetchall()

    def count_active_threads(self, user_id: str) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) AS n FROM threads WHERE user_id = ? AND archived = 0", (user_id,)
        ).fetchone()
        return int(row["n"])

    # -- messages ----------------------------------------------------------------------------------

    def add_message(
        self,
        *,
        thread_id: str,
        user_id: str,
        role: str,
        content: str,
        agent_id: str | None,
        tokens: int | None,
        meta: Mapping[str, Any] | None,
    ) -> dict[str, Any] | None:
        if self.get_thread(thread_id, user_id) is None:
            return None
        message_id = new_id()
        stamp = now_iso()
        with self.conn:
            self.conn.execute(
                f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, thread_id, user_id, role, content, agent_id, tokens, _dump(meta), stamp),
            )
            self.conn.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (stamp, thread_id))
        row = self.conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return _message(row)

    def list_messages(self, thread_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? ORDER BY rowid", (thread_id,)
        ).fetchall()
        return [_message(row) for row in rows]

    def message_texts(self, thread_id: str, roles: Iterable[str]) -> list[str]:
        wanted = tuple(roles)
        placeholders = ", ".join("?" for _ in wanted)
        rows = self.conn.execute(
            f"SELECT content FROM messages WHERE thread_id = ? AND role IN ({placeholders}) ORDER BY rowid",
            (thread_id, *wanted),
        ).fetchall()
        return [row["content"] for row in rows]

    # -- concepts ----------------------------------------------------------------------------------

    def record_concepts(
        self, user_id: str, thread_id: str, concepts: Sequence[str], *, mark_consolidated: bool = True
    ) -> ConceptWrite:
        """Store the concepts of one thread for its user, in one transaction.

        A concept unknown for the user is inserted (origin: this thread). A known one is linked to the
        thread and its mention count goes up, once per thread, so consolidating a thread twice changes
        nothing. The counts returned are the rows the database reports as written. The thread's
        ``consolidated_at`` is set when something was written (unless ``mark_consolidated`` is false).
        """
        stamp = now_iso()
        new_concepts = 0
        new_links = 0
        consolidated_at: str | None = None
        with self.conn:
            for text in concepts:
                inserted = self.conn.execute(
                    "INSERT INTO concepts (user_id, concept_text, origin_thread_id, first_mentioned_at,"
                    " last_mentioned_at, mention_count) VALUES (?, ?, ?, ?, ?, 1)"
                    " ON CONFLICT (user_id, concept_text) DO NOTHING",
                    (user_id, text, thread_id, stamp, stamp),
                ).rowcount
                new_concepts += inserted
                concept_id = self.conn.execute(
                    "SELECT id FROM concepts WHERE user_id = ? AND concept_text = ?", (user_id, text)
                ).fetchone()["id"]
                linked = self.conn.execute(
                    "INSERT OR IGNORE INTO concept_threads (concept_id, thread_id, linked_at) VALUES (?, ?, ?)",
                    (concept_id, thread_id, stamp),
                ).rowcount
                new_links += linked
                if linked and not inserted:
                    self.conn.execute(
                        "UPDATE concepts SET mention_count = mention_count + 1, last_mentioned_at = ?"
                        " WHERE id = ?",
                        (stamp, concept_id),
                    )
            if (new_concepts or new_links) and mark_consolidated:
                self.conn.execute("UPDATE threads SET consolidated_at = ? WHERE id = ?", (stamp, thread_id))
                consolidated_at = stamp
        return ConceptWrite(new_concepts, new_links, consolidated_at)

    def _require_thread(self, thread_id: str) -> dict[str, Any]:
        row = self.conn.execute(
            f"SELECT {_THREAD_COLUMNS} FROM threads WHERE id = ?", (thread_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"thread {thread_id} vanished")
        return _thread(row)


def _dump(meta: Mapping[str, Any] | None) -> str | None:
    return None if meta is None else json.dumps(meta, ensure_ascii=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _thread(row: sqlite3.Row) -> dict[str, Any]:
    thread = dict(row)
    thread["meta"] = _load(thread["meta"])
    return thread


def _message(row: sqlite3.Row) -> dict[str, Any]:
    message = dict(row)
    message["meta"] = _load(message["meta"])
    return message
