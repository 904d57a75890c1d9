"""The benchmarks' stack: a real PostgreSQL + pgvector and Valkey, and a seeded corpus.

Built from the blocks the test suite's harness uses too (``ci.stack.ServerSet``,
``ci.seed.seed_corpus``): free loopback ports in a temporary run folder, every server
stopped by its own PID at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ci import stack
from ci.seed import SeedResult, seed_corpus

CORPUS_DOCS = 20_000
CORPUS_SEED = 7
# pgvector's guidance for IVFFlat: lists = rows / 1000 up to 1M rows
IVFFLAT_LISTS = CORPUS_DOCS // 1000


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.ServerSet]:
    """PostgreSQL 18 + pgvector and Valkey for the whole session."""
    server_set = stack.start_server_set(stack.loopback_settings(tmp_path_factory.mktemp("stack")))
    try:
        yield server_set
    finally:
        server_set.close()


@pytest.fixture(scope="session")
def corpus(servers: stack.ServerSet) -> SeedResult:
    """A clustered 20k-document corpus (hash embedder) with HNSW and IVFFlat indexes."""
    run_dir = servers.settings.run_dir
    env = {"SEARCH_EMBEDDER": "hash"}
    result = seed_corpus(
        run_dir, servers.pg.url, CORPUS_DOCS, CORPUS_SEED, {**env, "SEARCH_INDEX_MODE": "hnsw"}
    )
    ivfflat = {**env, "SEARCH_INDEX_MODE": "ivfflat", "SEARCH_IVFFLAT_LISTS": str(IVFFLAT_LISTS)}
    seed_corpus(run_dir, servers.pg.url, CORPUS_DOCS, CORPUS_SEED, ivfflat)
    return result
