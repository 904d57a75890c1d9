"""``perfci sweep capacity`` for real: a short run on the hash embedder and 5k documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.cli import main

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(600)]


def test_one_command_prints_both_services_for_both_mixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "capacity"
    code = main(
        [
            *["sweep", "capacity", "--embedder", "hash", "--docs", "5000", "--repeat", "1"],
            *["--start-rate", "20", "--max-rate", "40", "--step-s", "2", "--warmup-s", "1"],
            *["--zipf-warm-rate", "1000", "--order-seed", "1", "--out", str(out)],
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    for mix in ("Zipf query log", "all-unique (every request a miss)"):
        for service in ("service", "reference"):
            assert f"| {mix} | {service} | 1 | " in table
    saved = json.loads((out / "capacity.json").read_text())
    # the reference perf.toml [capacity] names, recorded with the run
    assert saved["config"]["reference_app"] == "benchmarks.reference_service:create_app"
    points = saved["points"]
    # 20/s and 40/s are far below either service's capacity on 5k documents: both pass
    for p in points:
        assert p["passed"], p
        assert p["requests"] >= p["rate"] * 2 * 0.9  # the measured window was answered
    assert {(p["service"], p["mix"], p["rate"]) for p in points} == {
        (s, m, r) for s in ("service", "reference") for m in ("zipf", "unique") for r in (20, 40)
    }
    assert all(r["capacity_rps"]["median"] == 40 for r in saved["rows"])
    # every all-unique request of the run carried a text never sent before
    texts = []
    for f in sorted((out / "queries").glob("unique-*.json")):
        texts += [q["q"] for q in json.loads(f.read_text())["queries"]]
    assert len(texts) == len(set(texts)) > 0
    assert (out / "capacity.png").exists()
    assert "Every step:" in (out / "capacity.md").read_text()
