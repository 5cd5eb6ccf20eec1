"""Consolidation of a thread into long-term memory, without an LLM.

The public service asks an LLM for the concepts of a conversation; the reference service extracts them
lexically so that its output is deterministic and a test can predict it: lowercase words of at least
``MIN_LENGTH`` letters (accents allowed), minus French and English stopwords, de-duplicated in order of
first appearance. Only user and assistant messages count.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from emergence_reference import faults as F
from emergence_reference import preferences
from emergence_reference.faults import FaultSet
from emergence_reference.preference_store import PreferenceStore
from emergence_reference.store import Store
from emergence_reference.vectors import VectorStore, VectorStoreNotReadyError

logger = logging.getLogger(__name__)
llm_logger = logging.getLogger("emergence_reference.llm")

# A consolidation waits this long for the vector store still opening at start-up.
VECTOR_WAIT_SECONDS = 30.0
# How long the unreachable LLM keeps a consolidation before failing (short: tests wait for it).
LLM_TIMEOUT_SECONDS = 0.3

MIN_LENGTH = 5
CONCEPT_ROLES = ("user", "assistant")

# Letters only (any script, accents included): digits, underscores, apostrophes and hyphens split words.
_WORD = re.compile(r"[^\W\d_]+")

# Only words of MIN_LENGTH letters or more can reach the filter, so shorter stopwords are not listed.
# Pleasantries count as stopwords: "ok merci", "thanks, great" carry no concept.
_ENGLISH = """
    about above after again against along already although always among another anyone anything around
    because become before behind being below between beyond cannot could doing during either enough
    every everyone everything further given going great hello however indeed itself later least maybe
    might myself never nothing often other others otherwise ought ourselves perhaps please quite rather
    really right shall should since something still thank thanks their theirs themselves there therefore
    these thing things think those though through together under until whatever where whether which
    while whose within without would yours yourself yourselves
    absolutely exactly sorry
"""
_FRENCH = """
    ainsi alors après assez aucun aucune aujourd auquel aussi autre autres auxquels avaient avais avait
    avant avoir ayant beaucoup bientôt bonjour bonne bonsoir celle celles celui cependant certains
    chaque comme comment contre depuis derrière désormais elles encore ensuite entre envers étaient
    étais était étant étiez étions eurent eussent faire faisait faites hélas jamais jusqu jusque leurs
    lorsque maintenant malgré merci mêmes moins notre nôtre parce parfois parmi pendant peuvent plaît plait plupart
    plusieurs plutôt pourquoi pourtant pouvait presque puisque quand quant quelle quelles quelque
    quelques quels salut serai seraient serait seront seulement sinon sommes souvent surtout tandis
    tellement toujours toute toutes voici voilà votre vôtre vraiment
    accord absolument désolé exactement génial pardon parfait super
"""
STOPWORDS = frozenset(_ENGLISH.split()) | frozenset(_FRENCH.split())


def extract_concepts(texts: Iterable[str]) -> list[str]:
    """Candidate concepts of a conversation, deterministic and in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(unicodedata.normalize("NFC", text).lower()):
            if len(word) >= MIN_LENGTH and word not in STOPWORDS:
                seen.setdefault(word, None)
    return list(seen)


@dataclass(frozen=True)
class ConsolidationResult:
    thread_id: str
    candidates: int
    new_concepts: int
    """Concept rows inserted for this thread, as reported by the database."""
    new_links: int
    consolidated_at: str | None
    preferences_saved: int = 0
    error: str | None = None
    """Why the consolidation failed; the public service still reports such a thread with 0 concepts."""


class ThreadNotFoundError(LookupError):
    pass


class LLMUnavailableError(ConnectionError):
    pass


class LLMResponseError(ValueError):
    """The LLM answered, but not with the JSON the consolidation asked for."""


class Consolidator:
    """Turns an archived thread's messages into the user's long-term concepts and preferences."""

    def __init__(
        self, store: Store, preferences_store: PreferenceStore, vectors: VectorStore, faults: FaultSet
    ) -> None:
        self._store = store
        self._preferences = preferences_store
        self._vectors = vectors
        self._faults = faults

    async def consolidate_thread(
        self, thread_id: str, user_id: str, *, llm_error: str | None = None
    ) -> ConsolidationResult:
        """Consolidate one thread. A failure of the (simulated) LLM is logged and returned, not raised,
        as the public gardener does; an unknown thread raises. ``llm_error`` makes the LLM's answer
        unusable with that error (the ``consolidation-fails-some`` fault picks the tasks)."""
        thread = self._store.get_thread(thread_id, user_id)
        if thread is None:
            raise ThreadNotFoundError(f"thread {thread_id} not found for user {user_id}")
        if self._faults.on(F.LLM_LATENCY):
            await asyncio.sleep(self._faults.value(F.LLM_LATENCY))
        try:
            if self._faults.bites(F.LLM_UNREACHABLE, user_id):
                await self._call_llm()
            if llm_error is not None:
                raise LLMResponseError(llm_error)
        except (LLMUnavailableError, LLMResponseError) as exc:
            logger.error("Erreur consolidation thread %s: %s", thread_id, exc)
            return ConsolidationResult(thread_id, 0, 0, 0, None, error=str(exc))
        concepts = extract_concepts(self._store.message_texts(thread_id, CONCEPT_ROLES))
        # consolidated-at-missing: the concepts are written, the thread is never marked consolidated.
        mark = not self._faults.on(F.CONSOLIDATED_AT_MISSING)
        written = self._store.record_concepts(user_id, thread_id, concepts, mark_consolidated=mark)
        saved = await self._save_preferences(user_id, thread_id, thread.get("session_id"))
        return ConsolidationResult(
            thread_id=thread_id,
            candidates=len(concepts),
            new_concepts=written.new_concepts,
            new_links=written.new_links,
            consolidated_at=written.consolidated_at,
            preferences_saved=saved,
        )

    @staticmethod
    async def _call_llm() -> None:
        """What the public service sees when OpenAI and its Anthropic fallback are both unreachable."""
        await asyncio.sleep(LLM_TIMEOUT_SECONDS)
        llm_logger.error("OpenAI request failed: Connection error. Falling back to Anthropic.")
        llm_logger.error("Anthropic request failed: Connection error.")
        raise LLMUnavailableError("Connection error. (all LLM providers unreachable)")

    async def _save_preferences(self, user_id: str, thread_id: str, session_id: str | None) -> int:
        candidates = preferences.extract_preferences(self._store.message_texts(thread_id, ("user",)))
        if not candidates:
            return 0
        try:
            await self._vectors.wait_ready(VECTOR_WAIT_SECONDS)
        except VectorStoreNotReadyError as exc:
            logger.error("Vectorisation préférences impossible: %s", exc)
            return 0
        return await asyncio.to_thread(
            self._preferences.save, user_id, candidates, thread_id=thread_id, session_id=session_id
        )
