"""The recall check's stored figures: what ``verdict.json`` holds, old and new."""

from __future__ import annotations

import msgspec
import pytest

from ci.results.quality import QualityRun, SideQuality


def side(recalls: tuple[float | None, ...] = (1.0, 0.9)) -> SideQuality:
    return SideQuality(
        queries=2, filtered=1, recall_at_k=0.95, recall_filtered=1.0, recall_unfiltered=0.9,
        short_share=0.0, failed=0, recalls=recalls,
    )  # fmt: skip


def test_a_run_stored_without_figures_on_the_base_s_graph_decodes_to_none() -> None:
    old = msgspec.json.encode({"k": 10, "sample_seed": 42, "base": side(), "candidate": side()})
    assert b"candidate_on_base" not in old
    run = msgspec.json.decode(old, type=QualityRun)
    assert run.candidate_on_base is None
    assert run.base == side()


def test_figures_on_the_base_s_graph_round_trip() -> None:
    run = QualityRun(
        k=10, sample_seed=42, base=side(), candidate=side(), candidate_on_base=side((None, 0.8))
    )
    assert msgspec.json.decode(msgspec.json.encode(run), type=QualityRun) == run


def test_figures_on_the_base_s_graph_must_pair_with_the_base_s_by_query() -> None:
    with pytest.raises(ValueError, match=r"candidate_on_base has 3 per-query recalls, the base 2"):
        QualityRun(
            k=10,
            sample_seed=42,
            base=side(),
            candidate=side(),
            candidate_on_base=side((1.0, 0.9, 0.8)),
        )


def test_the_base_s_code_on_its_graph_round_trips_and_pairs_by_query() -> None:
    run = QualityRun(
        k=10,
        sample_seed=42,
        base=side(),
        candidate=side(),
        candidate_on_base=side((None, 0.8)),
        base_on_base=side((1.0, 0.8)),
    )
    assert msgspec.json.decode(msgspec.json.encode(run), type=QualityRun) == run
    assert run.on_base_reference() == side((1.0, 0.8))
    assert msgspec.structs.replace(run, base_on_base=None).on_base_reference() == side()
    with pytest.raises(ValueError, match=r"base_on_base has 3 per-query recalls, the base 2"):
        msgspec.structs.replace(run, base_on_base=side((1.0, 0.9, 0.8)))
    with pytest.raises(ValueError, match=r"base_on_base without candidate_on_base"):
        msgspec.structs.replace(run, candidate_on_base=None)
