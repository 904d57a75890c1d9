"""Single-query search latency per index mode, and embedding time per embedder.

``nox -s bench`` runs these on the seeded 20k-document corpus, saves the run and compares
it with the last saved one (pytest-benchmark's ``--benchmark-compare``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from ci import stack
from ci.seed import SeedResult
from service.db.database import Database
from service.embed.hash import hash_embed
from service.embed.minilm import MiniLMEmbedder
from service.metrics import Metrics
from service.model import Vectors
from service.settings import Settings


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def query_vectors(corpus: SeedResult) -> Vectors:
    log = json.loads(corpus.query_log_path.read_text())
    return hash_embed([q["q"] for q in log["queries"][:64]])


@pytest.mark.parametrize("mode", ["hnsw", "ivfflat", "exact"])
def test_search_latency(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    servers: stack.ServerSet,
    query_vectors: Vectors,
    mode: str,
) -> None:
    benchmark.group = "search k=10"
    settings = Settings(
        database_url=servers.pg.url,
        embedder="hash",
        index_mode=mode,  # type: ignore[arg-type]  # parametrized literal
        pool_min_size=1,
        pool_max_size=1,
    )
    db = loop.run_until_complete(Database.open(settings, Metrics()))
    counter = iter(range(10**9))

    def one() -> int:
        vector = query_vectors[next(counter) % len(query_vectors)]
        return len(loop.run_until_complete(db.search(vector, 10)))

    try:
        for _ in range(20):  # warm the buffer cache and the prepared statements
            one()
        assert benchmark(one) == 10
    finally:
        loop.run_until_complete(db.close())


def test_embed_hash(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "embed one query"
    assert benchmark(hash_embed, ["how does sourdough fermentation work"]).shape == (1, 384)


def test_embed_minilm(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "embed one query"
    model = MiniLMEmbedder(threads=1)
    model.embed_sync(["warm-up"])
    assert benchmark(model.embed_sync, ["how does sourdough fermentation work"]).shape == (1, 384)
