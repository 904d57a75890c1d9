"""The recall check on the real stack: a lower ef_search fails, identical sides pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.experiments.gate.quality import (
    QualityTarget,
    measure_quality,
    quality_sample,
    score,
    truth_service,
)
from ci.judge.quality import judge_quality
from ci.seed import SeedResult
from ci.settings.gate import GateRule
from tests.harness import Servers, ServiceFactory

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_sample_is_fixed_half_filtered_and_distinct(corpus: SeedResult) -> None:
    sample = quality_sample(corpus.query_log_path, 200, 42)
    assert sample == quality_sample(corpus.query_log_path, 200, 42)
    assert len(sample) == 200
    assert len(set(sample)) == 200
    assert sum(q.topic is not None for q in sample) == 100
    assert sample != quality_sample(corpus.query_log_path, 200, 43)


def test_ties_at_the_kth_score_count_as_found() -> None:
    truth = [(1, 0.9), (2, 0.8), (3, 0.7)]
    assert score([(1, 0.9), (2, 0.8), (3, 0.7)], truth) == 1.0
    assert score([(1, 0.9), (2, 0.8), (9, 0.7)], truth) == 1.0  # 9 ties with 3
    assert score([(1, 0.9), (2, 0.8), (9, 0.6)], truth) == pytest.approx(2 / 3)
    assert score([], truth) == 0.0


def test_a_lower_ef_search_fails_the_recall_check_and_identical_sides_pass(
    servers: Servers, service_factory: ServiceFactory, corpus: SeedResult, tmp_path: Path
) -> None:
    base = service_factory(SEARCH_INDEX_MODE="hnsw", SEARCH_HNSW_EF_SEARCH="80")
    same = service_factory(SEARCH_INDEX_MODE="hnsw", SEARCH_HNSW_EF_SEARCH="80")
    worse = service_factory(SEARCH_INDEX_MODE="hnsw", SEARCH_HNSW_EF_SEARCH="10")
    sample = quality_sample(corpus.query_log_path, 200, 42)
    env = {"SEARCH_EMBEDDER": "hash"}
    with truth_service(
        "base", servers.server_set, tmp_path / "truth", servers.database_url, env
    ) as truth:
        a_a = measure_quality(
            {"base": QualityTarget(base.url, truth), "candidate": QualityTarget(same.url, truth)},
            sample,
            42,
        )
        a_b = measure_quality(
            {"base": QualityTarget(base.url, truth), "candidate": QualityTarget(worse.url, truth)},
            sample,
            42,
        )
    assert a_a.base.queries == 200
    assert a_a.base.filtered == 100
    assert a_a.base == a_a.candidate
    # pgvector draws each node's level at random, so the same build's recall moves by a
    # point or two from one index build to the next (0.9495 has been seen at ef_search 80).
    assert a_a.base.recall_at_k > 0.9
    assert a_b.candidate.recall_at_k < a_b.base.recall_at_k - 0.02
    assert judge_quality(a_a, GateRule()).status == "pass"
    failed = judge_quality(a_b, GateRule())
    assert failed.status == "fail"
    assert failed.reasons[0].startswith("recall@10 ")
