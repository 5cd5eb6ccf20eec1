"""A deterministic, local embedding function for ChromaDB: a hashed bag of words.

Chroma's default embedding function downloads an ONNX model at first use; the reference service must
start with nothing downloaded and give the same vectors in every process, so each word (normalised,
accents kept) is hashed with BLAKE2b into one of ``DIMENSION`` signed buckets and the vector is
L2-normalised. Texts sharing words are close in cosine distance, which is all the store needs.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

DIMENSION = 64
NAME = "emergence-hashed-bow"
_WORD = re.compile(r"[^\W_]+")


def vector(text: str, dimension: int = DIMENSION) -> list[float]:
    values = [0.0] * dimension
    for word in _WORD.findall(unicodedata.normalize("NFC", text).lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "big") % dimension
        values[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in values))
    if norm == 0.0:
        values[0] = 1.0  # an empty text still needs a valid unit vector
        return values
    return [v / norm for v in values]


class HashedBagOfWords(EmbeddingFunction[Documents]):
    def __init__(self, dimension: int = DIMENSION) -> None:
        self.dimension = dimension

    def __call__(self, input: Documents) -> Embeddings:
        import numpy as np

        return [np.asarray(vector(text, self.dimension), dtype=np.float32) for text in input]

    @staticmethod
    def name() -> str:
        return NAME

    def get_config(self) -> dict[str, Any]:
        return {"dimension": self.dimension}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashedBagOfWords:
        return HashedBagOfWords(int(config.get("dimension", DIMENSION)))
