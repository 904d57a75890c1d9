"""ci.vegeta: targets from the query log, parsing vegeta's report and encoded results."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ci.errors import RunError
from ci.measure import vegeta
from ci.seed import generate_query_log

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "vegeta"


def test_report_durations_are_converted_from_ns() -> None:
    report = vegeta.parse_report(json.loads((RESOURCES / "report.json").read_text()))
    assert report.requests == 20
    assert report.success == pytest.approx(0.95)
    assert report.duration_s == pytest.approx(1.899999667)
    assert report.latencies_ms["50th"] == pytest.approx(2.95)
    assert report.latencies_ms["max"] == pytest.approx(40.0)
    assert report.status_codes == {"200": 19, "503": 1}
    assert report.errors == ("503 Service Unavailable",)


def test_malformed_report() -> None:
    with pytest.raises(RunError, match="malformed vegeta report"):
        vegeta.parse_report({"requests": 3}, source="r.json")
    with pytest.raises(RunError, match="not a vegeta JSON report"):
        vegeta.parse_report([1, 2])


def test_encoded_results() -> None:
    lines = (RESOURCES / "results.jsonl").read_text().splitlines()
    hits = vegeta.parse_encoded(lines)
    assert len(hits) == 20
    assert [h.code for h in hits].count(503) == 1
    failed = next(h for h in hits if h.code == 503)
    assert failed.error == "503 Service Unavailable"
    assert failed.latency_ms == pytest.approx(40.0)
    # Z and +01:00 timestamps land on one clock, 100 ms apart
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(hits)]
    assert all(gap == pytest.approx(0.1, abs=1e-3) for gap in gaps)


def test_nanosecond_timestamps() -> None:
    assert vegeta.parse_timestamp("1970-01-01T00:00:01.123456789Z") == pytest.approx(1.123456)
    assert vegeta.parse_timestamp("1970-01-01T01:00:02+01:00") == pytest.approx(2.0)
    assert vegeta.parse_timestamp("1970-01-01T00:00:03.5-00:30") == pytest.approx(1803.5)
    with pytest.raises(RunError, match="not RFC 3339"):
        vegeta.parse_timestamp("yesterday")


def test_bad_encoded_line_names_it() -> None:
    with pytest.raises(RunError, match="line 2"):
        vegeta.parse_encoded(['{"timestamp":"1970-01-01T00:00:00Z","latency":1,"code":200}', "{"])


def test_json_targets_follow_the_query_log() -> None:
    log = generate_query_log(seed=3, distinct=200)
    targets = vegeta.json_targets(log, "http://svc:9/", count=2000, seed=1)
    assert targets == vegeta.json_targets(log, "http://svc:9/", count=2000, seed=1)
    assert len(targets) == 2000
    posts = [t for t in targets if t["method"] == "POST"]
    assert 100 < len(posts) < 300  # about one in ten
    body: dict[str, Any] = json.loads(base64.b64decode(posts[0]["body"]))
    assert set(body) >= {"query", "k"}
    gets = [t for t in targets if t["method"] == "GET"]
    assert all(t["url"].startswith("http://svc:9/v1/search?") for t in gets)
    top = log["queries"][0]["q"]
    drawn = [parse_qs(urlsplit(t["url"]).query)["q"][0] for t in gets]
    # the most popular query (weight ~0.17 at s=1.1 over 200) dominates the draw
    assert drawn.count(top) / len(drawn) > 0.1


def test_json_targets_refuse_an_empty_log() -> None:
    with pytest.raises(RunError, match="no queries"):
        vegeta.json_targets({"queries": []}, "http://x")
    with pytest.raises(RunError, match="count=0"):
        vegeta.json_targets(generate_query_log(seed=1, distinct=5), "http://x", count=0)


def test_write_json_targets_one_object_per_line(tmp_path: Path) -> None:
    log = tmp_path / "querylog.json"
    log.write_text(json.dumps(generate_query_log(seed=2, distinct=50)))
    out = vegeta.write_json_targets(log, "http://h:1", tmp_path / "t.jsonl", count=30)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 30
    assert all(set(r) >= {"method", "url", "header"} for r in rows)
