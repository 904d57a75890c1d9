"""The one interface every embedder implements (hash, minilm, http, and the batcher)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from service.model import Vectors


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (len(texts), DIM)."""

    @property
    def model_id(self) -> str: ...

    @property
    def loaded(self) -> bool: ...

    async def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def aclose(self) -> None: ...
