"""A real, short ``perfci gate``: two services from worktrees on one stack, duet windows, shapes.

The test profile's 5k hash corpus and small windows (2 s at 80/s): seconds instead of
minutes, the same code path as the PR check. Run it under the measure lock.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci.cli import main
from ci.experiments.gate.runner import GateRequest, run_gate
from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import Revision, load_verdict
from ci.judge.quality import paired_drop
from ci.post.artifact import check_windows
from ci.results.duet import load_duet
from ci.settings import PerfConfig, load_perf_config
from ci.settings.gate import GateConfig, GateDesign, GateMetric, GateRule

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[4]
SMALL = GateConfig(
    GateRule(
        looks=(12,),
        metrics=(
            # the whole side's CPU: every PostgreSQL backend's CPU is read in 10-ms clock
            # ticks, and in 2-s windows (~0.8 s of CPU per side) its A/A noise is ~5 % (SD
            # of the per-window log ratio), against ~0.5 % in the gate's 10-s windows
            GateMetric("cpu_ms_per_request", "lower", 0.15),
            GateMetric("error_rate", "lower", 0.001, "absolute"),
            # a sound service's RSS growth: A/A quiet in 2-s windows too (test_windows.py
            # has a leaking one fail on it)
            GateMetric("rss_kb_per_1k_requests", "lower", 2000.0, "absolute"),
        ),
    ),
    GateDesign(
        # ~320 requests per side and window: 160 arrivals, 150 burst searches, the streams
        rate=80.0,
        window_s=2.0,
        docs=5000,
        embedder="hash",
        shapes=("ramp",),
        shape_time_scale=0.005,
        shape_vu_scale=0.2,
        budget_s=300.0,
        shapes_reserve_s=60.0,
        burst_gap_s=0.0,  # 2-s windows: the bursts at once
        db_rtt_ms=2.0,  # each side through its own relay, as the gate runs by default
        micro_rounds=4,  # the stage runs, each side's own venv; too few rounds to FAIL
    ),
)


def _config() -> PerfConfig:
    repo = load_perf_config()
    return PerfConfig(sla=repo.sla, gate=SMALL)


def _head() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_an_unchanged_revision_passes_and_rejudges_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = _head()
    out = tmp_path / "gate"
    request = GateRequest(
        repo=REPO, base=Revision(head, head), candidate=Revision(head, head), out_dir=out,
        config=_config(), machine_class="test", harness_source="base revision",
        harness_revision=head, seed=5,
    )  # fmt: skip
    v = run_gate(request, progress=print)
    j = v.judgement
    assert (j.decision, j.conclusion) == ("pass", "success"), j.reasons
    assert (v.base.sha, v.candidate.sha) == (head, head)
    assert v.harness.source == "base revision"
    assert not v.harness.changed
    assert j.pairs == 12
    assert [m.name for m in j.demoted] == []
    # the recall check: both sides against their own exact scan, the same sample
    assert v.quality is not None
    assert v.quality.base.queries >= 200
    # two builds of one HNSW graph answer some queries differently (pgvector draws each
    # node's level at random): the paired test finds no drop, whatever the difference
    tested = paired_drop(v.quality)
    assert tested is not None
    assert tested[0] > 0.001, v.quality
    # the micro-benchmarks: each side's code in its own venv, every case measured
    assert v.micro is not None
    assert len(v.micro.rounds) == 4
    assert all(x is not None for r in v.micro.rounds for x in (*r.base, *r.candidate))
    # the percentiles with few samples in 2-s windows are report-only, and say why
    assert {r.name for r in j.report_only} >= {"latency_p50", "latency_p90"}
    assert {(s.scenario, s.metric) for s in v.sla} >= {("ramp", "p95_ms"), ("ramp", "error_rate")}
    assert all(s.base is not None for s in v.sla if s.status != "skipped")
    folder = GateFolder(out)
    run = load_duet(folder.windows)
    assert len(run.windows) == 16
    assert {w.slot_a for w in run.windows} == {"base", "candidate"}
    assert all(w.base.requests > 0 and w.candidate.requests > 0 for w in run.windows)
    assert all(w.base.cpu_s > 0 and w.candidate.cpu_s > 0 for w in run.windows)
    # the whole side: its PostgreSQL backends and its own Valkey count, each part apart
    for w in run.windows:
        for s in (w.base, w.candidate):
            assert s.postgres_cpu_s is not None
            assert s.valkey_cpu_s is not None
            assert s.relay_cpu_s is not None  # db_rtt_ms: its relay, read apart
            assert s.rss_peak_mb is not None
            assert s.ttfe_ms is not None
            assert s.burst_ms is not None
            # slow searches count in every window (the judge drops the warm-up's)
            assert (s.burst_ms.samples, s.slow is not None) == (150, True)
    assert sum(w.base.postgres_cpu_s or 0 for w in run.windows) > 0
    assert run.setup is not None
    assert set(run.setup) == {"base", "candidate"}
    assert run.setup["base"].index == run.setup["candidate"].index
    assert all(s.index_s > 0 and s.ready_s > s.index_s for s in run.setup.values())
    assert {r.name for r in j.report_only} >= {
        "postgres_cpu_ms_per_request", "valkey_cpu_ms_per_request", "burst_latency_p90",
        "stream_ttfe_p95", "rss_peak_mb", "slow_share",
    }  # fmt: skip
    for path in (folder.verdict, folder.summary, folder.report):
        assert path.exists(), path
    assert load_verdict(folder.verdict) == v
    check_windows(run, v)  # what the trusted poster checks before it re-judges: a real run passes
    assert list(folder.shapes.glob("base/**/results.json"))
    assert v.flamegraphs == ()  # a pass keeps no profiles
    assert not folder.profiles.exists()
    capsys.readouterr()
    # the folder re-judges alone: the rule is in the verdict file, not in perf.toml
    assert main(["gate", "--rejudge", str(out)]) == 0
    assert "(the same)" in capsys.readouterr().out


def test_a_candidate_burning_more_cpu_fails(tmp_path: Path) -> None:
    head = _head()
    request = GateRequest(
        repo=REPO, base=Revision(head, head), candidate=Revision(head, head),
        out_dir=tmp_path / "gate", config=_config(), machine_class="test",
        harness_source="base revision", harness_revision=head, seed=6, shapes=False,
        service_env={"candidate": {"SEARCH_DEBUG_CPU_SLOWDOWN": "0.5"}},
    )  # fmt: skip
    v = run_gate(request, progress=print)
    assert v.judgement.decision == "fail", v.judgement.reasons
    assert v.judgement.reasons[0].startswith("cpu_ms_per_request +")
    assert v.sla == ()
    # a FAIL keeps each side's flame graph and the differential one
    assert v.flamegraphs[-1] == "profiles/flame-diff.svg"
    assert {name.split("/")[1].split(".")[0] for name in v.flamegraphs[:-1]} == {
        "base",
        "candidate",
    }
    assert all((tmp_path / "gate" / name).stat().st_size > 0 for name in v.flamegraphs)
