"""`perfci sweep index` on the seeded corpus (through python -m service.db.sweep): recall rises
with the search knob."""

from __future__ import annotations

import pytest

from ci.errors import ConfigError
from ci.experiments.sweep_index import IndexVariant, sweep_index
from ci.render.sweep import index_plot_png, index_table
from ci.seed import SeedResult
from tests.harness import Servers


def test_a_request_the_service_refuses_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"sweep index: variants\[0\]\.method='bogus'"):
        sweep_index("postgresql://127.0.0.1:1/none", [IndexVariant("bogus", "vector")], {})


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sweep_index_measures_recall_latency_and_qps(servers: Servers, corpus: SeedResult) -> None:
    # halfvec variants: their expressions differ from the fixture's own indexes
    variants = [IndexVariant("ivfflat", "halfvec", lists=20), IndexVariant("hnsw", "halfvec")]
    points = sweep_index(
        servers.database_url,
        variants,
        {"hnsw": [10, 40], "ivfflat": [1, 10]},
        queries=40,
        concurrency=(1, 2),
    )
    assert [(p.variant, p.value) for p in points] == [
        ("sweep_ivfflat_halfvec_l20", 1),
        ("sweep_ivfflat_halfvec_l20", 10),
        ("sweep_hnsw_halfvec_m16_efc64", 10),
        ("sweep_hnsw_halfvec_m16_efc64", 40),
    ]
    for p in points:
        assert 0.0 <= p.recall_at_10 <= 1.0
        assert 0 < p.p50_ms <= p.p99_ms
        assert set(p.qps) == {1, 2}
        assert p.build_s > 0
        assert p.index_mb > 0
    assert points[1].recall_at_10 >= points[0].recall_at_10  # more probes, no less recall
    assert points[1].recall_at_10 >= 0.95
    assert points[3].recall_at_10 >= 0.95
    assert "recall@10" in index_table(points, (1, 2))
    assert index_plot_png(points, 2).startswith(b"\x89PNG")
