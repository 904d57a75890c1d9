"""Recall@10 of the ANN indexes against the exact scan, on a clustered 20k corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ci.seed import SeedResult
from service.db import Database
from service.embed import hash_embed
from service.metrics import Metrics
from service.settings import Settings
from tests.conftest import Servers

pytestmark = [pytest.mark.stack, pytest.mark.timeout(180)]

QUERIES = 200


async def _top10(settings: Settings, vectors: np.ndarray) -> list[set[int]]:
    db = await Database.open(settings, Metrics())
    try:
        return [{h.id for h in await db.search(v, 10)} for v in vectors]
    finally:
        await db.close()


@pytest.mark.parametrize(("mode", "floor"), [("hnsw", 0.95), ("ivfflat", 0.95)])
async def test_ann_recall_at_10(
    servers: Servers, corpus: SeedResult, mode: str, floor: float
) -> None:
    log = json.loads(corpus.query_log_path.read_text())
    texts = [q["q"] for q in log["queries"][:QUERIES]]
    vectors = hash_embed(texts)
    base = Settings(database_url=servers.database_url, embedder="hash")
    exact = await _top10(Settings(**{**_fields(base), "index_mode": "exact"}), vectors)
    ann = await _top10(Settings(**{**_fields(base), "index_mode": mode}), vectors)
    recall = float(np.mean([len(a & e) / len(e) for a, e in zip(ann, exact, strict=True)]))
    assert recall >= floor, f"{mode} recall@10 {recall:.3f} < {floor}"


def _fields(settings: Settings) -> dict[str, object]:
    return {f: getattr(settings, f) for f in settings.__dataclass_fields__}
