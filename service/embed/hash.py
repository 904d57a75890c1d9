"""``hash``: a deterministic feature-hashing embedder with no model.

For fast tests and for seeding large corpora quickly; its vectors cluster by shared
vocabulary (random indexing over unigrams and bigrams).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from service.model import DIM, Vectors

_TOKEN = re.compile(r"[a-z0-9]+")
# Function words and generic discourse words ("guide", "explains", "common") carry no
# topic; with no learned weights, hashing them only pulls every text toward every other.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "does",
        "do",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "my",
        "of",
        "on",
        "or",
        "the",
        "this",
        "to",
        "what",
        "when",
        "which",
        "with",
        "than",
        "that",
        "more",
        "many",
        "much",
        "most",
        "some",
        "any",
        "all",
        "about",
        "into",
        "over",
        "s",
        "t",
        "article",
        "explains",
        "examples",
        "experts",
        "expert",
        "discuss",
        "discussed",
        "relates",
        "relate",
        "matters",
        "matter",
        "people",
        "ask",
        "asks",
        "affects",
        "affect",
        "answer",
        "answers",
        "involves",
        "involve",
        "short",
        "history",
        "early",
        "today",
        "common",
        "mistakes",
        "mistake",
        "include",
        "includes",
        "ignoring",
        "rushing",
        "compare",
        "approaches",
        "approach",
        "measure",
        "effect",
        "guide",
        "practical",
        "everyone",
        "gets",
        "get",
        "wrong",
        "lessons",
        "lesson",
        "understanding",
        "modern",
        "ten",
        "questions",
        "question",
        "changed",
        "change",
        "beginner",
        "beginners",
        "handbook",
        "notes",
        "note",
        "simple",
        "important",
        "new",
        "best",
        "useful",
        "careful",
        "local",
        "small",
        "large",
        "daily",
        "way",
        "learn",
        "tips",
        "work",
        "problems",
        "problem",
    ]
)


@lru_cache(maxsize=200_000)
def _feature(token: str) -> npt.NDArray[np.float32]:
    """A dense pseudo-random unit direction per feature, seeded by the feature's hash."""
    seed = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    vec = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    vec /= np.linalg.norm(vec)
    vec.setflags(write=False)
    return vec


def feature_counts(text: str) -> dict[str, int]:
    """Unigram and bigram counts of ``text`` (lower-cased, stopwords dropped)."""
    tokens = [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]
    counts: dict[str, int] = {}
    for tok in tokens:
        counts[tok] = counts.get(tok, 0) + 1
    for a, b in itertools.pairwise(tokens):
        key = a + "_" + b
        counts[key] = counts.get(key, 0) + 1
    return counts


def hash_embed(texts: Sequence[str]) -> Vectors:
    """Random indexing: the tf-weighted sum of per-feature random directions.

    Features are unigrams and bigrams (sublinear term frequency). Texts that share
    features get close vectors, and every vector is dense, as sentence embeddings are —
    sparse one-hot hashing makes short queries near-orthogonal to everything, which ANN
    indexes handle far worse than real embeddings.
    """
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        vec = out[row]
        for tok, n in feature_counts(text).items():
            vec += _feature(tok) * np.float32(1.0 + np.log(n))
        norm = float(np.linalg.norm(vec))
        if norm > 0:
            vec /= norm
        else:
            vec[0] = 1.0
    return out


class HashEmbedder:
    """No model, no I/O: deterministic vectors in microseconds."""

    model_id = "hash-v4-384"
    loaded = True

    def __init__(self, on_call: Callable[[int, float], None] | None = None) -> None:
        self._on_call = on_call

    async def embed(self, texts: Sequence[str]) -> Vectors:
        start = time.perf_counter()
        vectors = hash_embed(texts)
        if self._on_call is not None:
            self._on_call(len(texts), time.perf_counter() - start)
        return vectors

    async def aclose(self) -> None:
        return None
