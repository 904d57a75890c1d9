from __future__ import annotations

from ci.judge.bench import BenchmarkComparison
from ci.judge.compare import MetricComparison
from ci.render.text import benchmark_table


def _metric(
    name: str, change: float | None, lo: float | None, hi: float | None
) -> MetricComparison:
    return MetricComparison(
        scenario="embed",
        metric=name,
        direction="lower",
        mode="ratio",
        paired=False,
        n_base=20,
        n_candidate=20,
        base_median=0.01,
        candidate_median=0.012,
        change=change,
        ci_low=lo,
        ci_high=hi,
        p_value=0.001,
        status="fail" if change else "error",
        fail_threshold=0.05,
        warn_threshold=0.02,
    )


def test_benchmark_table_lines() -> None:
    result = BenchmarkComparison(
        paired=False,
        base_files=("b.json",),
        candidate_files=("c.json",),
        metrics=(_metric("test_enc", 0.2, 0.15, 0.25), _metric("test_dec", None, None, None)),
    )
    lines = benchmark_table(result).splitlines()
    assert lines[0].split() == ["benchmark", "change", "interval", "status"]
    assert lines[1].startswith("embed test_enc ")
    assert lines[1].split()[-4:] == ["+20.0%", "[+15.0%,", "+25.0%]", "fail"]
    assert lines[2].split()[-2:] == ["n/a", "error"]
