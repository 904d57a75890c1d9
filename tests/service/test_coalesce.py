"""Single-flight and micro-batching without a server: counts, errors, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from service.batch import BatchingEmbedder
from service.coalesce import SingleFlight
from service.embed import DIM, Vectors, hash_embed

pytestmark = pytest.mark.timeout(10)


async def test_concurrent_callers_share_one_computation() -> None:
    calls = 0
    sizes: list[int] = []

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return 42

    flight: SingleFlight[int] = SingleFlight(on_done=sizes.append)
    results = await asyncio.gather(*[flight.do("k", compute) for _ in range(10)])
    assert calls == 1
    assert [r for r, _ in results] == [42] * 10
    assert sum(joined for _, joined in results) == 9
    assert sizes == [10]


async def test_every_waiter_gets_the_same_error() -> None:
    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("db down")

    flight: SingleFlight[int] = SingleFlight()
    results = await asyncio.gather(
        *[flight.do("k", boom) for _ in range(5)], return_exceptions=True
    )
    assert all(isinstance(r, ValueError) and str(r) == "db down" for r in results)


async def test_cancelled_leader_does_not_fail_the_waiters() -> None:
    async def compute() -> str:
        await asyncio.sleep(0.05)
        return "ok"

    flight: SingleFlight[str] = SingleFlight()
    leader = asyncio.create_task(flight.do("k", compute))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flight.do("k", compute))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await waiter == ("ok", True)
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_disabled_computes_per_call() -> None:
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        return calls

    flight: SingleFlight[int] = SingleFlight(enabled=False)
    await asyncio.gather(*[flight.do("k", compute) for _ in range(3)])
    assert calls == 3


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
