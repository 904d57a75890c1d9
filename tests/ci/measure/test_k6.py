"""ci.k6: command building and parsing of recorded k6 outputs (tests/resources/k6/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.measure import k6

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "k6"


def _load(name: str) -> object:
    return json.loads((RESOURCES / name).read_text())


def test_recorded_ramp_summary_with_a_failed_threshold() -> None:
    # Recorded from `perfci run --profile test` while POST /v1/documents returned 500:
    # 4 of 172 requests failed, so `rate<0.001` is `true` (= FAILED) in the export.
    summary = k6.parse_summary(_load("ramp.summary.json"))
    assert summary.requests == 172
    assert summary.failed_rate == pytest.approx(4 / 172)
    assert summary.dropped_iterations == 0
    outcomes = {(t.metric, t.expression): t.ok for t in summary.thresholds}
    assert outcomes == {
        ("http_req_duration", "p(95)<2000"): True,
        ("http_req_duration", "p(99)<5000"): True,
        ("http_req_failed", "rate<0.001"): False,
    }
    lat = summary.latency_ms
    assert lat is not None
    assert lat.p999 == pytest.approx(24.146803498)
    assert lat.minimum <= lat.p50 <= lat.p95 <= lat.p99 <= lat.p999 <= lat.maximum
    assert summary.ttfe_ms is None
    assert summary.duration_s > 0


def test_recorded_sse_summary_has_time_to_first_event() -> None:
    summary = k6.parse_summary(_load("sse.summary.json"))
    assert summary.requests == 81
    assert summary.ttfe_ms is not None
    assert summary.ttfe_ms.p999 == pytest.approx(32.23481516000011)
    assert all(t.ok for t in summary.thresholds)
    assert ("search_sse_complete", "rate>0.999") in {
        (t.metric, t.expression) for t in summary.thresholds
    }


def test_raw_csv_gives_every_request() -> None:
    raw = k6.read_raw_csv(RESOURCES / "ramp.raw.csv.gz")
    assert len(raw.durations) == 172
    assert len(raw.failed) == 172
    assert sum(1 for _, v in raw.failed if v > 0) == 4
    assert raw.ttfe == ()
    seconds = [t for t, _ in raw.durations]
    assert max(seconds) - min(seconds) < 60


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "not a k6 summary export"),
        ({"metrics": []}, "not a k6 summary export"),
        ({"metrics": {"http_req_failed": {"thresholds": {"rate<0.1": "yes"}}}}, "not a bool"),
        ({"metrics": {"http_req_duration": {"med": 1.0}}}, "trend is malformed"),
    ],
)
def test_malformed_summary_is_a_run_error(data: object, message: str) -> None:
    with pytest.raises(RunError, match=message):
        k6.parse_summary(data, source="x.json")


def test_corrupt_raw_output_is_a_run_error(tmp_path: Path) -> None:
    bad = tmp_path / "raw.csv.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(RunError, match="cannot read k6 CSV output"):
        k6.read_raw_csv(bad)
    text = tmp_path / "raw.csv"
    text.write_text("metric_name,timestamp,metric_value\nhttp_req_duration,17,fast\n")
    with pytest.raises(RunError, match="line 2: bad http_req_duration sample"):
        k6.read_raw_csv(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("14.6s", 14.6), ("1m30s", 90.0), ("2h0m0s", 7200.0), ("500ms", 0.5), ("1m0.25s", 60.25)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert k6.parse_go_duration(text) == pytest.approx(seconds)


def test_bad_go_duration() -> None:
    with pytest.raises(RunError, match="'10 minutes'"):
        k6.parse_go_duration("10 minutes")


def test_command_exports_summary_and_raw_output(tmp_path: Path) -> None:
    inv = k6.invocation("ramp.js", {"TIME_SCALE": "0.01"}, tmp_path, "ramp")
    cmd = inv.command(Path("/bin/k6"))
    assert cmd[:2] == ["/bin/k6", "run"]
    assert cmd[cmd.index("--summary-export") + 1] == str(tmp_path / "ramp.summary.json")
    assert cmd[cmd.index("--out") + 1] == f"csv={tmp_path / 'ramp.raw.csv.gz'}"
    assert "p(99.9)" in cmd[cmd.index("--summary-trend-stats") + 1]
    assert cmd[-1].endswith("scenarios/ramp.js")


def test_a_long_scenario_exports_k6s_web_dashboard(tmp_path: Path) -> None:
    inv = k6.invocation("ramp.js", {"TIME_SCALE": "1"}, tmp_path, "ramp")
    assert "K6_WEB_DASHBOARD" not in inv.env  # off unless asked for
    path = k6.dashboard_path(tmp_path, "ramp")
    on = k6.with_dashboard(inv, path)
    assert on.env["K6_WEB_DASHBOARD"] == "true"
    assert on.env["K6_WEB_DASHBOARD_PORT"] == "-1"  # no server, only the export
    assert on.env["K6_WEB_DASHBOARD_EXPORT"] == str(path)
    assert on.env["TIME_SCALE"] == "1"
    assert k6.dashboard_links(tmp_path, ["ramp", "sse"]) == ()
    path.write_text("<html></html>")
    (link,) = k6.dashboard_links(tmp_path, ["ramp", "sse"])
    assert (link.label, link.path) == ("k6 web dashboard: ramp", "ramp.k6-dashboard.html")


def test_k6_writes_a_self_contained_dashboard_export(tmp_path: Path) -> None:
    """The real k6 binary: a short closed-loop script against a local server."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    script = tmp_path / "tiny.js"
    script.write_text(
        "import http from 'k6/http';\n"
        "export const options = { vus: 2, duration: '5s' };\n"
        f"export default function () {{ http.get('{url}'); }}\n"
    )
    path = k6.dashboard_path(tmp_path, "tiny")
    inv = k6.with_dashboard(
        k6.K6Invocation(
            script, {}, tmp_path / "s.json", tmp_path / "r.csv.gz", tmp_path / "k6.log"
        ),
        path,
    )
    try:
        code = k6.run_k6(inv, k6.find_k6())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert code in (0, 99)
    html = path.read_text()
    assert "<html" in html.lower()
    assert "<script src=" not in html  # nothing to fetch: it opens offline
