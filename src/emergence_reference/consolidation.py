"""Consolidation of a thread into long-term memory, without an LLM.

The public service asks an LLM for the concepts of a conversation; the reference service extracts them
lexically so that its output is deterministic and a test can predict it: lowercase words of at least
``MIN_LENGTH`` letters (accents allowed), minus French and English stopwords, de-duplicated in order of
first appearance. Only user and assistant messages count.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from emergence_reference import preferences
from emergence_reference.store import Store, now_iso

logger = logging.getLogger(__name__)

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


class ThreadNotFoundError(LookupError):
    pass


class Consolidator:
    """Turns an archived thread's messages into the user's long-term concepts."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def consolidate_thread(self, thread_id: str, user_id: str) -> ConsolidationResult:
        if self._store.get_thread(thread_id, user_id) is None:
            raise ThreadNotFoundError(f"thread {thread_id} not found for user {user_id}")
        thread = self._store.get_thread(thread_id, user_id) or {}
        concepts = extract_concepts(self._store.message_texts(thread_id, CONCEPT_ROLES))
        written = self._store.record_concepts(user_id, thread_id, concepts)
        saved = self._save_preferences(user_id, thread_id, thread.get("session_id"))
        return ConsolidationResult(
            thread_id=thread_id,
            candidates=len(concepts),
            new_concepts=written.new_concepts,
            new_links=written.new_links,
            consolidated_at=written.consolidated_at,
            preferences_saved=saved,
        )

    def _save_preferences(self, user_id: str, thread_id: str, session_id: str | None) -> int:
        """Upsert the thread's stated preferences; the two lines are the public service's own."""
        candidates = preferences.extract_preferences(self._store.message_texts(thread_id, ("user",)))
        if not candidates:
            return 0
        saved = preferences.upsert(
            self._store.conn, user_id, candidates, thread_id=thread_id, session_id=session_id, stamp=now_iso()
        )
        logger.info("%d items ajoutés/mis à jour dans '%s'.", saved, preferences.COLLECTION)
        logger.info("%d préférences/intentions vectorisées.", saved)
        return saved
