"""Micro-batching without a server: one model call per batch, size bound, shared errors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from service.embed.batch import BatchingEmbedder
from service.embed.hash import hash_embed
from service.model import DIM, Vectors

pytestmark = pytest.mark.timeout(10)


class _Counting:
    model_id = "count"
    loaded = True

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.fail = fail

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(len(texts))
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("model exploded")
        return hash_embed(texts)

    async def aclose(self) -> None:
        return None


async def test_distinct_queries_arriving_together_share_one_model_call() -> None:
    inner = _Counting()
    batcher = BatchingEmbedder(inner, max_size=32, max_wait_s=0.005)
    texts = [f"query number {i}" for i in range(20)] + ["query number 0"]
    out = await asyncio.gather(*[batcher.embed([t]) for t in texts])
    assert inner.batches == [20]  # one call; the duplicate embedded once
    for text, vec in zip(texts, out, strict=True):
        assert np.allclose(vec, hash_embed([text]))
        assert vec.shape == (1, DIM)


async def test_batches_split_at_max_size_and_errors_reach_everyone() -> None:
    inner = _Counting()
    batcher = BatchingEmbedder(inner, max_size=8, max_wait_s=0.05)
    await asyncio.gather(*[batcher.embed([f"t{i}"]) for i in range(20)])
    assert inner.batches == [8, 8, 4]
    failing = BatchingEmbedder(_Counting(fail=True), max_size=4, max_wait_s=0.001)
    results = await asyncio.gather(
        *[failing.embed([f"t{i}"]) for i in range(3)], return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
