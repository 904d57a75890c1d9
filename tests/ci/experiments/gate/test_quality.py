"""The recall check on the real stack: a lower ef_search fails, identical sides pass, on the
sides' own graphs and with each side's code on the base's graph."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci.experiments.gate.quality import (
    OnBaseTargets,
    QualityTarget,
    measure_quality,
    quality_sample,
    score,
    short_lived_service,
    vectors_differ,
)
from ci.experiments.gate.sidecode import SideCode
from ci.judge.quality import judge_quality
from ci.results.duet import Side
from ci.seed import SeedResult
from ci.settings.gate import GateRule
from tests.ci.experiments.gate.code_copies import REPO
from tests.harness import Servers, ServiceFactory

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(300)]


def _code(**env: str) -> SideCode:
    """This checkout's code, run by this interpreter."""
    return SideCode(Path(sys.executable), REPO, env)


@contextlib.contextmanager
def _truth(servers: Servers, run_dir: Path, code: SideCode) -> Iterator[str]:
    with short_lived_service(
        servers.server_set, run_dir, servers.database_url, code, exact=True
    ) as (url, why):
        assert why is None
        yield url


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
    with _truth(servers, tmp_path / "truth", _code(SEARCH_EMBEDDER="hash")) as truth:
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
    # all three services search one graph: no build noise between the sides (with the
    # default's 1.5 pp of it, a 200-query drop of a few pp can stay unclear at alpha/8)
    one_graph = GateRule(recall_build_sd=0.0)
    assert judge_quality(a_a, one_graph).status == "pass"
    failed = judge_quality(a_b, one_graph)
    assert failed.status == "fail"
    assert failed.reasons[0].startswith("recall@10 ")


def test_each_side_s_code_on_the_base_s_graph_answers_alike_and_shows_ef_search(
    servers: Servers, service_factory: ServiceFactory, corpus: SeedResult, tmp_path: Path
) -> None:
    hnsw = {"SEARCH_EMBEDDER": "hash", "SEARCH_INDEX_MODE": "hnsw"}
    # the base's measured service answers otherwise than its code on a fresh look (here by
    # a lower ef_search; in a gate, from a cache filled before the windows' writes): the
    # base's-graph pair does not involve it
    base = service_factory(SEARCH_INDEX_MODE="hnsw", SEARCH_HNSW_EF_SEARCH="10")
    sample = quality_sample(corpus.query_log_path, 200, 42)

    def on_base(
        run_dir: str, **env: str
    ) -> contextlib.AbstractContextManager[tuple[str, str | None]]:
        code = _code(**hnsw, **env)
        return short_lived_service(
            servers.server_set, tmp_path / run_dir, servers.database_url, code, exact=False
        )

    with (
        _truth(servers, tmp_path / "truth", _code(**hnsw)) as truth,
        on_base("base-code", SEARCH_HNSW_EF_SEARCH="80") as (base_code, base_why),
        on_base("same", SEARCH_HNSW_EF_SEARCH="80") as (same, same_why),
        on_base("worse", SEARCH_HNSW_EF_SEARCH="10") as (worse, worse_why),
        on_base("other-index", SEARCH_HNSW_M="11") as (_other, other_why),
    ):
        assert (base_why, same_why, worse_why) == (None, None, None)
        # the base's database has no m = 11 index, and none is built
        assert other_why == "index documents_hnsw_vector_m11_efc64 missing"
        assert vectors_differ({"base": base.url, "candidate": same}) is None  # both hash-v4
        assert vectors_differ({"base": base.url, "candidate": "http://127.0.0.1:9"}) == (
            "the candidate service did not report an embedder (/v1/stats)"
        )
        targets: dict[Side, QualityTarget] = {
            "base": QualityTarget(base.url, truth),
            "candidate": QualityTarget(base.url, truth),
        }
        a_a = measure_quality(targets, sample, 42, OnBaseTargets(base_code, same))
        a_b = measure_quality(targets, sample, 42, OnBaseTargets(base_code, worse))
    # one graph, identical code: query by query the same answers, no spread to allow for
    assert a_a.candidate_on_base is not None
    assert a_a.candidate_on_base == a_a.base_on_base
    assert a_a.base_on_base == a_b.base_on_base
    assert a_a.base.recall_at_k < a_a.candidate_on_base.recall_at_k - 0.02  # ef_search 10
    check = judge_quality(a_a, GateRule())
    assert check.status == "pass"
    assert (check.recall_change_on_base, check.p_drop_on_base) == (0.0, 1.0)
    # ef_search 10 on the base's graph: the drop itself, while the sides' own figures are equal
    assert a_b.candidate_on_base is not None
    assert a_b.candidate_on_base.recall_at_k < a_b.on_base_reference().recall_at_k - 0.02
    failed = judge_quality(a_b, GateRule())
    assert failed.status == "fail"
    assert failed.reasons[0].startswith("recall@10 on the base's graph ")
