"""One duet window's k6 run: the variables the script reads, its scenarios, and the figures
read back from its summary export (real k6 against loopback servers that record requests)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ci.errors import RunError
from ci.experiments.gate.k6_window import DuetLoad, slot_figures, window_env
from ci.judge.window_metrics import side_value
from ci.measure.k6 import find_k6
from ci.settings import repo_sla

RESOURCES = Path(__file__).resolve().parents[3] / "resources"
REPO = Path(__file__).resolve().parents[4]


def test_slot_figures_from_a_recorded_summary() -> None:
    metrics = json.loads((RESOURCES / "k6" / "duet.summary.json").read_text())["metrics"]
    a = slot_figures(metrics, "a", cpu_s=3.6)
    assert a.requests == 1041
    assert a.searches == 1001
    assert a.failed == 0
    assert a.latency_ms.samples == 1001
    assert a.latency_ms.p50 == pytest.approx(3.345068)
    assert a.latency_ms.p90 == pytest.approx(24.905629)
    assert a.cpu_ms_per_request == pytest.approx(3600 / 1041)
    b = slot_figures(metrics, "b", cpu_s=3.6)
    assert b.latency_ms.p99 == pytest.approx(55.664161)


def test_a_slot_k6_never_saw_has_no_samples() -> None:
    s = slot_figures({}, "a", cpu_s=0.0)
    assert (s.requests, s.latency_ms.samples, s.cpu_ms_per_request) == (0, 0, None)


def test_failed_requests_are_the_rate_metric_passes() -> None:
    metrics = {
        "search_duet_a_requests": {"count": 100},
        "search_duet_a_searches": {"count": 100},
        "search_duet_a_failed": {"passes": 7, "fails": 93, "value": 0.07},
    }
    assert slot_figures(metrics, "a", cpu_s=1.0).failed == 7


def test_malformed_figures_are_a_run_error() -> None:
    with pytest.raises(RunError, match="slot a: malformed"):
        slot_figures({"search_duet_a_requests": {"count": "many"}}, "a", cpu_s=1.0)


def _load(query_log: Path, burst_gap_s: float = 0.0) -> DuetLoad:
    return DuetLoad(
        rate=50.0,
        window_s=8.0,
        unique_fraction=0.3,
        write_fraction=0.02,
        query_log=query_log,
        sla_env=repo_sla().k6_env(),
        burst_vus=40,
        burst_iterations=2,
        burst_gap_s=burst_gap_s,
    )


def test_every_variable_a_window_sets_is_read_by_lib_config(tmp_path: Path) -> None:
    import re

    config = (REPO / "scenarios" / "lib" / "config.js").read_text()
    read = set(re.findall(r"num\('([A-Z_]+)'", config)) | set(
        re.findall(r"__ENV\.([A-Z_]+)", config)
    )
    env = window_env(_load(tmp_path / "q.json"), ("http://a", "http://b"), "n")
    sent = {k for k in env if not k.startswith(("PERFCI_SLA_", "K6_"))}
    assert "BURST_GAP_S" in sent
    assert sent <= read


def _duet_scenarios(load: DuetLoad) -> dict[str, Any]:
    """The scenarios ``k6 inspect`` reads from duet.js under a window's variables."""
    load.query_log.write_text(json.dumps({"queries": [{"q": "tea", "k": 10, "weight": 1}]}))
    env = window_env(load, ("http://127.0.0.1:9", "http://127.0.0.1:10"), "n")
    args = [str(find_k6()), "inspect"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    proc = subprocess.run(
        [*args, str(REPO / "scenarios" / "duet.js")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    scenarios: dict[str, Any] = json.loads(proc.stdout)["scenarios"]
    return scenarios


@pytest.mark.timeout(60)
def test_with_a_burst_gap_slot_a_bursts_as_the_arrivals_end_and_slot_b_a_gap_later(
    tmp_path: Path,
) -> None:
    scenarios = _duet_scenarios(_load(tmp_path / "q.json", burst_gap_s=2.5))
    assert set(scenarios) == {"duet", "burst_a", "burst_b"}
    a, b = scenarios["burst_a"], scenarios["burst_b"]
    assert (a["exec"], a["startTime"], b["exec"], b["startTime"]) == (
        "burstA",
        "8s",
        "burstB",
        "10.5s",
    )
    for burst in (a, b):  # each is over (its graceful stop too) before the next starts
        assert (burst["vus"], burst["iterations"]) == (40, 2)
        assert (burst["maxDuration"], burst["gracefulStop"]) == ("1.875s", "625ms")


@pytest.mark.timeout(60)
def test_without_a_burst_gap_both_slots_burst_at_once(tmp_path: Path) -> None:
    scenarios = _duet_scenarios(_load(tmp_path / "q.json"))
    assert set(scenarios) == {"duet", "burst"}
    burst = scenarios["burst"]
    assert (burst["exec"], burst["startTime"], burst["maxDuration"]) == ("burst", "8s", "8s")
    assert burst["gracefulStop"] == "3s"


def test_slow_searches_streams_and_the_burst_per_slot() -> None:
    metrics = {
        "search_duet_a_requests": {"count": 140},
        "search_duet_a_searches": {"count": 100},
        "search_duet_a_latency": {"count": 100, "med": 3.0, "p(90)": 9.0, "p(95)": 12.0,
                                  "p(99)": 40.0, "avg": 5.0, "max": 80.0, "min": 1.0},
        "search_duet_a_slow": {"count": 3, "rate": 0.3},
        "search_duet_a_ttfe": {"count": 5, "med": 7.0, "p(90)": 9.0, "p(95)": 11.0, "max": 12.0},
        "search_duet_a_stream": {"count": 5, "med": 20.0, "p(90)": 30.0, "p(95)": 35.0,
                                 "max": 40.0},
        "search_duet_a_burst": {"count": 30, "med": 15.0, "p(90)": 25.0, "p(95)": 28.0,
                                "max": 33.0},
    }  # fmt: skip
    a = slot_figures(metrics, "a", cpu_s=1.0)
    assert a.slow == 3
    assert a.slow_share == pytest.approx(0.03)
    assert a.ttfe_ms is not None
    assert a.ttfe_ms.p95 == 11.0
    assert a.stream_ms is not None
    assert a.stream_ms.samples == 5
    assert a.burst_ms is not None
    assert a.burst_ms.p90 == 25.0
    # sequential bursts write the same per-slot metric: each side its own burst's median
    metrics["search_duet_b_burst"] = {"count": 80, "med": 9.5, "p(90)": 14.0, "p(95)": 16.0,
                                      "max": 20.0}  # fmt: skip
    b = slot_figures(metrics, "b", cpu_s=1.0)
    assert (side_value("burst_latency_p50", a), side_value("burst_latency_p50", b)) == (15.0, 9.5)
    assert side_value("burst_latency_p90", b) == 14.0
    # a summary without the slow counter (an older duet script) has no slow figure
    assert slot_figures(metrics, "b", cpu_s=1.0).slow is None
    assert slot_figures({}, "b", cpu_s=0.0).ttfe_ms is None


class _Recorder(ThreadingHTTPServer):
    """Answers every search with an empty result after a delay: ``new_delay_s`` for a query
    that carries the duet's nonce (one no cache has seen), none for the log's; records each
    search's (query, k, topic filter)."""

    def __init__(self, new_delay_s: float) -> None:
        self.new_delay_s = new_delay_s
        self.searches: list[tuple[str, int, str | None]] = []
        super().__init__(("127.0.0.1", 0), _RecorderHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecorderHandler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self._answer(query["q"][0], int(query["k"][0]), query.get("topic", [None])[0])

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer(body["query"], int(body["k"]), body.get("filter", {}).get("topic"))

    def _answer(self, q: str, k: int, topic: str | None) -> None:
        self.server.searches.append((q, k, topic))
        if "nonce" in q:
            time.sleep(self.server.new_delay_s)
        body = b'{"results": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.timeout(90)
def test_a_search_behind_the_other_sides_answer_is_slow_and_bursts_ask_what_no_cache_holds(
    tmp_path: Path,
) -> None:
    texts = [f"text {i}" for i in range(80)]
    log = [
        {"q": t, "k": k, "weight": 1.0 / (i + 1), "topic": "t/b" if i == 70 else None}
        for i, t in enumerate(texts)
        for k in (10, 50)
    ] + [{"q": "rare", "k": 10, "weight": 1e-9, "topic": "t/a"}]
    (tmp_path / "q.json").write_text(json.dumps({"queries": log}))
    load = dataclasses.replace(
        _load(tmp_path / "q.json", burst_gap_s=1.5),
        rate=20.0, window_s=2.0, unique_fraction=0.5, write_fraction=0.0, burst_vus=10,
    )  # fmt: skip
    # slot a stalls every search no cache has seen by 40 ms, slot b answers at once
    servers = [_Recorder(new_delay_s=0.04), _Recorder(new_delay_s=0.0)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        urls = (servers[0].url, servers[1].url)
        env = window_env(load, urls, "nonce", burst_seq=300)
        summary = tmp_path / "summary.json"
        args = [str(find_k6()), "run", "--quiet", "--summary-export", str(summary)]
        proc = subprocess.run(
            [*args, str(REPO / "scenarios" / "duet.js")],
            env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads(summary.read_text())["metrics"]
    a, b = (slot_figures(metrics, slot, cpu_s=1.0) for slot in "ab")
    # 25 ms behind (the default margin): each of slot a's new searches, none of slot b's
    new = sum("nonce" in q for q, k, _ in servers[0].searches if k in (10, 50))
    assert 0 < new < a.latency_ms.samples
    assert (a.slow, b.slow) == (new, 0)
    bursts = [[s for s in server.searches if s[1] not in (10, 50)] for server in servers]
    # each side's burst: 20 searches, the same ones, none asked twice, each a popular text of
    # the log with one of its topic filters (never batched) and a k the log never asks
    assert len(bursts[0]) == 20
    assert sorted(bursts[0], key=str) == sorted(bursts[1], key=str)
    assert len(set(bursts[0])) == 20
    assert {q for q, _, _ in bursts[0]} <= set(texts[:60])
    assert all(11 <= k < 100 and k != 20 for _, k, _ in bursts[0])
    # the sequence goes on from BURST_SEQ: searches 300-319 are texts 0-19 in round 5 (of 60
    # texts), so the log's topic 5 mod 2 (of t/a, t/b) and k number 5 // 2 (13)
    assert set(bursts[0]) == {(f"text {i}", 13, "t/b") for i in range(20)}
