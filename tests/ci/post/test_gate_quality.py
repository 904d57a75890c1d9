"""The recall check in a perf-pr artifact: perf-comment decodes it and judges it again,
the candidate's figures on the base's graph included (ci.post.gate)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ci.judge.gate_decision import rejudge
from ci.judge.gate_verdict import dump_verdict, load_verdict
from ci.post.gate import gate_outcome
from ci.results.duet import load_duet
from ci.results.quality import QualityRun, SideQuality
from tests.ci.post.gate_artifacts import LINKS, RULE, artifact, event

BASE = (1.0, 0.9) * 480  # 960 queries, recall 0.95


def side(recalls: tuple[float, ...]) -> SideQuality:
    mean = round(sum(recalls) / len(recalls), 6)
    return SideQuality(
        queries=len(recalls), filtered=len(recalls) // 2, recall_at_k=mean,
        recall_filtered=mean, recall_unfiltered=mean, short_share=0.0, failed=0,
        recalls=recalls,
    )  # fmt: skip


def quality(on_base: tuple[float, ...]) -> QualityRun:
    return QualityRun(
        k=10, sample_seed=42, base=side(BASE), candidate=side(BASE), candidate_on_base=side(on_base)
    )


def test_a_verdict_with_recall_on_the_base_s_graph_is_judged_again_with_it(
    tmp_path: Path,
) -> None:
    folder = artifact(tmp_path, "pass")
    windows = load_duet(folder.windows)
    v = msgspec.structs.replace(load_verdict(folder.verdict), quality=quality(BASE))
    dump_verdict(msgspec.structs.replace(v, judgement=rejudge(v, windows)), folder.verdict)
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "success"
    assert out.comment is not None
    assert "| recall@10 on the base's graph (" in out.comment
    # a 3 pp drop on the base's graph under a verdict that passes: judged again, refused
    lower = tuple(r - 0.1 if i < 288 else r for i, r in enumerate(BASE))
    forged = msgspec.structs.replace(v, quality=quality(lower))
    assert rejudge(forged, windows).decision == "fail"
    dump_verdict(msgspec.structs.replace(forged, judgement=rejudge(v, windows)), folder.verdict)
    refused = gate_outcome(event(), folder, LINKS, RULE)
    assert refused.conclusion == "failure"
    assert refused.problem is not None
    assert "judges to 'fail'" in refused.problem
