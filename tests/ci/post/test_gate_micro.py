"""The micro-benchmarks in a perf-pr artifact: perf-comment decodes them and judges them again,
so a verdict that hides a micro-benchmark FAIL is refused (ci.post.artifact)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ci.judge.gate_decision import rejudge
from ci.judge.gate_verdict import dump_verdict, load_verdict
from ci.post.gate import gate_outcome
from ci.results.duet import load_duet
from tests.ci.judge.micro_factory import micro_run
from tests.ci.post.gate_artifacts import LINKS, RULE, artifact, event


def test_a_verdict_with_micro_benchmarks_is_judged_again_with_them(tmp_path: Path) -> None:
    folder = artifact(tmp_path, "pass")
    windows = load_duet(folder.windows)
    v = msgspec.structs.replace(load_verdict(folder.verdict), micro=micro_run(0.0))
    dump_verdict(msgspec.structs.replace(v, judgement=rejudge(v, windows)), folder.verdict)
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "success"
    assert out.comment is not None
    assert "| micro-benchmark (" in out.comment


def test_a_verdict_hiding_a_micro_benchmark_fail_is_refused(tmp_path: Path) -> None:
    folder = artifact(tmp_path, "pass")
    windows = load_duet(folder.windows)
    honest = load_verdict(folder.verdict)
    # search answers 15x slower to encode, under the judgement of a clean pass
    forged = msgspec.structs.replace(honest, micro=micro_run({"search_response": 14.0}))
    assert rejudge(forged, windows).decision == "fail"
    assert forged.judgement == rejudge(honest, windows)
    dump_verdict(forged, folder.verdict)
    refused = gate_outcome(event(), folder, LINKS, RULE)
    assert refused.conclusion == "failure"
    assert refused.problem is not None
    assert "judges to 'fail'" in refused.problem
