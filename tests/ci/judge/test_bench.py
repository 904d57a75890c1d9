from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ci.errors import ResultsError
from ci.judge.bench import compare_benchmarks
from ci.settings import CompareConfig


def _bench_file(
    path: Path, medians: dict[str, float], data: dict[str, list[float]] | None = None
) -> Path:
    doc = {
        "machine_info": {"node": "x"},
        "benchmarks": [
            {
                "name": name,
                "group": "search",
                "stats": {
                    "median": med,
                    "iqr": med * 0.1,
                    "mean": med,
                    "stddev": 0.0,
                    "rounds": 10,
                    **({"data": data[name]} if data else {}),
                },
            }
            for name, med in medians.items()
        ],
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_compare_benchmarks_per_file_medians(tmp_path: Path) -> None:
    base = [
        _bench_file(tmp_path / f"b{i}.json", {"enc": 1.0 + i * 0.001, "dec": 2.0}) for i in range(5)
    ]
    cand = [
        _bench_file(tmp_path / f"c{i}.json", {"enc": 1.3 + i * 0.001, "dec": 2.0}) for i in range(5)
    ]
    result = compare_benchmarks(base, cand, CompareConfig(), seed=1)
    assert result.paired
    by_name = {m.metric: m for m in result.metrics}
    assert by_name["enc"].status == "fail"
    assert by_name["enc"].scenario == "search"
    assert by_name["dec"].status == "pass"
    assert result.status == "fail"


def test_compare_benchmarks_raw_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    b = {"enc": list(rng.lognormal(0, 0.05, 50))}
    c = {"enc": list(rng.lognormal(math.log(1.2), 0.05, 50))}
    result = compare_benchmarks(
        [_bench_file(tmp_path / "b.json", {"enc": 1.0}, b)],
        [_bench_file(tmp_path / "c.json", {"enc": 1.2}, c)],
        CompareConfig(),
        seed=1,
    )
    (m,) = result.metrics
    assert not result.paired
    assert m.n_base == 50
    assert m.status == "fail"
    assert m.change is not None
    assert m.change == pytest.approx(0.2, abs=0.05)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"runs": []}', "not a pytest-benchmark file"),
        (
            '{"benchmarks": [{"name": "x", "stats": {"median": -1}}]}',
            "$.benchmarks[0].stats.median",
        ),
        ('{"benchmarks": [{"name": "x", "stats": {"median": NaN}}]}', "non-finite number NaN"),
        ('{"benchmarks": [{"name": 3, "stats": {}}]}', "$.benchmarks[0].name"),
        ('{"benchmarks": [{"name": "x", "stats": {"median": 1, "data": ["a"]}}]}', "stats.data"),
    ],
)
def test_malformed_benchmark_file_is_a_clear_error(
    tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    good = _bench_file(tmp_path / "good.json", {"x": 1.0})
    with pytest.raises(ResultsError) as info:
        compare_benchmarks([good], [bad], CompareConfig())
    assert message in str(info.value)
    assert str(bad) in str(info.value)
