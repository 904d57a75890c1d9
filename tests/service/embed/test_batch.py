"""Micro-batching without a server: one model call per batch, size bound, shared errors,
no wait at light load, and batches that gather behind a busy model."""

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


async def test_a_lone_text_is_sent_at_once_not_after_the_wait() -> None:
    inner = _Counting()
    batcher = BatchingEmbedder(inner, max_size=32, max_wait_s=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await batcher.embed(["alone"])
    assert loop.time() - start < 0.5  # the model call's 10 ms, not the 1 s wait
    assert inner.batches == [1]


async def test_texts_arriving_while_the_model_is_busy_go_together_when_it_finishes() -> None:
    inner = _Counting()  # each call takes 10 ms
    batcher = BatchingEmbedder(inner, max_size=32, max_wait_s=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def later(i: int) -> Vectors:
        await asyncio.sleep(0.001 * (i + 1))  # after the first call started, before it ends
        return await batcher.embed([f"late {i}"])

    await asyncio.gather(batcher.embed(["first"]), *[later(i) for i in range(5)])
    assert inner.batches == [1, 5]
    assert loop.time() - start < 0.5  # sent when the first call ended, not after 1 s


async def test_a_batch_behind_a_slow_call_is_sent_after_the_wait_as_a_second_call() -> None:
    class Slow(_Counting):
        async def embed(self, texts: Sequence[str]) -> Vectors:
            self.batches.append(len(texts))
            await asyncio.sleep(0.3 if len(self.batches) == 1 else 0.01)
            return hash_embed(texts)

    inner = Slow()
    batcher = BatchingEmbedder(inner, max_size=32, max_wait_s=0.02)
    loop = asyncio.get_running_loop()
    first = asyncio.ensure_future(batcher.embed(["slow one"]))
    await asyncio.sleep(0.01)
    start = loop.time()
    await batcher.embed(["behind it"])
    assert loop.time() - start < 0.2  # did not wait for the 300 ms call
    assert not first.done()
    await first
    assert inner.batches == [1, 1]
