"""Preferences and intentions stated in a conversation, and their document ids.

The public service filters user messages on verbs such as "préfère", "prefer", "want", classifies the
candidates with an LLM and upserts them into the ChromaDB collection ``memory_preferences``; the
reference service classifies lexically, clause by clause ("I prefer X and I want Y" is a preference
and an intent). The document id is a hash of the user, the type and the normalised text, so saving
the same preference again bumps a counter instead of adding a document.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

COLLECTION = "memory_preferences"
PREFERENCE = "preference"
INTENT = "intent"

_SENTENCE = re.compile(r"[^.!?\n;]+")
_CONJUNCTION = re.compile(r"\s*(?:\band\b|\bet\b|\bbut\b|\bmais\b)\s+", re.IGNORECASE)
_PREFERENCE = re.compile(
    r"\b(préfère|préfères|préférons|préfèrent|prefer|prefers|aime|aimes|like|likes|love|loves)\b",
    re.IGNORECASE,
)
_INTENT = re.compile(r"\b(want|wants|veux|voudrais|souhaite|souhaitons|need|needs)\b", re.IGNORECASE)
_TOPIC_WORD = re.compile(r"[^\W\d_]{4,}")
CONFIDENCE = 0.9  # an explicit verb: the lexical classifier is sure of the type


@dataclass(frozen=True)
class Preference:
    type: str  # preference | intent
    text: str

    @property
    def normalised(self) -> str:
        return normalise(self.text)

    @property
    def topic(self) -> str:
        """The first content word after the verb: what the preference is about."""
        verb = (_PREFERENCE if self.type == PREFERENCE else _INTENT).search(self.text)
        rest = self.text[verb.end() :] if verb else self.text
        words = _TOPIC_WORD.findall(unicodedata.normalize("NFC", rest).lower())
        return words[0] if words else self.type

    def document_id(self, user_id: str) -> str:
        return document_id(user_id, self.type, self.text)


def document_id(user_id: str, kind: str, text: str) -> str:
    return hashlib.sha256(f"{user_id}|{kind}|{normalise(text)}".encode()).hexdigest()[:32]


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def extract_preferences(texts: Iterable[str]) -> list[Preference]:
    """One candidate per clause that states a preference or an intention, de-duplicated, in order."""
    found: dict[str, Preference] = {}
    for text in texts:
        for sentence in _SENTENCE.findall(text):
            for clause in _CONJUNCTION.split(sentence):
                clause = clause.strip()
                if _PREFERENCE.search(clause):
                    kind = PREFERENCE
                elif _INTENT.search(clause):
                    kind = INTENT
                else:
                    continue
                found.setdefault(f"{kind}|{normalise(clause)}", Preference(kind, clause))
    return list(found.values())
