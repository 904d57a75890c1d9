"""A FAIL comment as reviewers get it, against its exact expected text.

The golden file holds every primary metric with its interval, the servers line (a
candidate whose lock bumps PostgreSQL and pgvector, each side on its own server), the
recall check (a faster candidate that lost answers), the micro-benchmarks (one case
several times slower, one slower within its limit, one the candidate lacks) and the
flame-graph links. Regenerate
it only on purpose: ``PERFCI_GOLDEN_UPDATE=1 pytest tests/ci/render/test_gate_golden.py``,
then read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from ci.judge.gate_verdict import Servers
from ci.judge.micro import judge_micro
from ci.render.gate import GateLinks, render_gate_comment
from ci.results.quality import QualityRun, SideQuality
from tests.ci.judge.micro_factory import micro_run
from tests.ci.render.gate_verdicts import RULE, side_servers, verdict

GOLDEN = Path(__file__).resolve().parents[2] / "resources" / "golden" / "gate_comment_fail.md"
LINKS = GateLinks(
    "https://github.com/acme/search/actions/runs/1/attempts/2",
    "https://github.com/acme/search/actions/runs/1/artifacts/9",
    "acme/search",
    17,
)


def _side(recall: float, short: float) -> SideQuality:
    # per query: a tenth of the sample a tenth below the rest, the mean at ``recall``
    top = round(recall + 0.01, 6)
    recalls = tuple([round(top - 0.1, 6)] * 24 + [top] * 216)
    return SideQuality(
        queries=240, filtered=120, recall_at_k=recall, recall_filtered=recall - 0.01,
        recall_unfiltered=recall + 0.01, short_share=short, failed=0, recalls=recalls,
    )  # fmt: skip


def _on_base(base: SideQuality, worse: int) -> SideQuality:
    # the candidate's code on the base's graph: its first ``worse`` queries a tenth lower
    recalls = [r - 0.1 if i < worse and r is not None else r for i, r in enumerate(base.recalls)]
    mean = round(sum(r for r in recalls if r is not None) / len(recalls), 6)
    return msgspec.structs.replace(
        base,
        recall_at_k=mean,
        recall_filtered=round(mean - 0.01, 6),
        recall_unfiltered=round(mean + 0.01, 6),
        short_share=0.02,
        recalls=tuple(None if r is None else round(r, 6) for r in recalls),
    )


def test_a_fail_comment_with_intervals_recall_and_flame_graphs_matches_the_golden_file() -> None:
    base = _side(0.987, 0.0)
    micro = micro_run(
        {"search_response": 2.7, "cache_round_trip": 0.1}, missing={"parse_search": "candidate"}
    )
    v = verdict(
        reasons=(
            *judge_micro(micro, RULE).reasons,
            "faster but less accurate (cpu_ms_per_request lower): recall@10 0.912 against the "
            "base's 0.987 (-7.5 pp, beyond the 1.5 pp allowed; filtered 0.902 vs 0.977, "
            "unfiltered 0.922 vs 0.997)",
            "recall@10 on the base's graph 0.920 against the base's 0.987 (-6.7 pp [-7.3, -6.1], "
            "beyond the 1.5 pp allowed; the candidate's code searching the base's index, no "
            "build noise, p = 2.9e-106)",
            "latency_p95 +12.3 % over 24 windows, beyond its +10.0 % fail threshold",
        ),
        quality=QualityRun(
            k=10,
            sample_seed=42,
            base=base,
            candidate=_side(0.912, 0.025),
            candidate_on_base=_on_base(base, 160),
        ),
        micro=micro,
        flamegraphs=(
            "profiles/base.cpu.4242.svg",
            "profiles/candidate.cpu.4343.svg",
            "profiles/flame-diff.svg",
        ),
        servers=Servers(
            postgres="per side",
            base=side_servers(),
            candidate=side_servers("18.7", "0.8.7", "18.7.0"),
        ),
    )
    body = render_gate_comment(v, LINKS)
    if os.environ.get("PERFCI_GOLDEN_UPDATE") == "1":
        GOLDEN.write_text(body, encoding="utf-8")
    assert body == GOLDEN.read_text(encoding="utf-8")


def test_no_flame_graph_line_without_flame_graphs() -> None:
    body = render_gate_comment(verdict(), LINKS)
    assert "Flame graphs" not in body
    assert "search quality" not in body
    assert "micro-benchmark" not in body
    assert "Servers" not in body
