"""The exact merge: split samples merge to the unsplit percentiles; one runner's merge is
k6's own summary; thresholds judged once; invariants name the runner."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci.errors import RunError
from ci.measure import k6, merge, segments
from ci.measure.collect import k6_percentile

HEADER = (
    "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,"
    "name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata"
)
PCTS = ("p(50)", "p(90)", "p(95)", "p(99)", "p(99.9)", "med", "min", "max", "count")


def _row(metric: str, t_us: int, value: float, scenario: str = "s", extra: str = "") -> str:
    # k6's CSV output writes values with six decimals
    return f"{metric},{t_us},{value:.6f},,,,true,,GET,u,HTTP/1.1,{scenario},,200,,,u,{extra},"


def write_shard(path: Path, samples: Sequence[tuple[int, float]], runner: int) -> None:
    """One runner's gzip CSV as k6 writes it: per request http_reqs, duration, failed."""
    lines = [HEADER]
    for t_us, value in samples:
        extra = f"instance_id={runner}"
        lines += [
            _row("http_reqs", t_us, 1.0, extra=extra),
            _row("http_req_duration", t_us, value, extra=extra),
            _row("http_req_failed", t_us, 0.0, extra=extra),
            _row("iterations", t_us, 1.0, extra=extra),
        ]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


# durations as k6 has them: whole nanoseconds in milliseconds, which six decimals keep exactly
durations_ms = st.lists(st.integers(0, 5_000_000_000), min_size=1, max_size=400).map(
    lambda ns: [n / 1e6 for n in ns]
)


@settings(max_examples=60, deadline=None)
@given(values=durations_ms, shards=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_random_shards_merge_to_the_unsplit_percentiles(
    values: list[float], shards: int, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("shards")
    rng = random.Random(seed)
    parts: list[list[tuple[int, float]]] = [[] for _ in range(shards)]
    for j, v in enumerate(values):
        parts[rng.randrange(shards)].append((1_700_000_000_000_000 + j * 1000, v))
    files = []
    for i, part in enumerate(parts, start=1):
        files.append(tmp / f"r{i}.csv.gz")
        write_shard(files[-1], part, i)
    merged = merge.merge_files(files)
    whole = np.sort(np.asarray(values))
    plain = {"med": k6_percentile(whole, 0.5), "min": whole[0], "max": whole[-1]}
    plain["count"] = len(whole)
    for agg in PCTS:
        pct = float(agg[2:-1]) / 100 if agg.startswith("p(") else None
        expected = k6_percentile(whole, pct) if pct is not None else plain[agg]
        assert merged.aggregate("http_req_duration", agg) == expected, agg
    assert merged.aggregate("http_reqs", "count") == len(values)


def test_k6_percentile_is_linear_between_ranks() -> None:
    v = np.asarray([10.0, 20.0, 30.0, 40.0])
    assert k6_percentile(v, 0.5) == 25.0  # i = 1.5
    assert k6_percentile(v, 0.9) == pytest.approx(37.0)  # i = 2.7
    assert k6_percentile(v, 1.0) == 40.0
    assert k6_percentile(np.asarray([7.0]), 0.95) == 7.0
    assert k6_percentile(np.asarray([], dtype=np.float64), 0.95) == 0.0


# -- real k6 -----------------------------------------------------------------------------------


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(random.random() * 0.004)  # spread latencies over a few milliseconds
        body = b"ok"
        self.send_response(500 if self.path.startswith("/fail") else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: {
    open: { executor: 'constant-arrival-rate', rate: 150, timeUnit: '1s', duration: '2s',
            preAllocatedVUs: 4, maxVUs: 8 },
  },
  thresholds: {
    http_req_duration: ['p(95)<2000', 'p(99.9)<1'],
    'http_req_failed{scenario:open}': ['rate<0.5'],
    'http_reqs{name:fail}': ['count<1'],
  },
};
export default function () {
  http.get(__ENV.BASE + (__ITER % 10 === 0 ? '/fail' : '/ok'),
           { tags: { name: __ITER % 10 === 0 ? 'fail' : 'ok' } });
}
"""


def test_one_runner_merges_to_k6s_own_summary(tmp_path: Path, local_server: str) -> None:
    script = tmp_path / "open.js"
    script.write_text(SCRIPT)
    raw, summary_path = tmp_path / "raw.csv.gz", tmp_path / "summary.json"
    binary = k6.find_k6()
    proc = subprocess.run(
        [str(binary), "run", "--quiet", "--summary-trend-stats", k6.TREND_STATS,
         "--summary-export", str(summary_path), "--out", f"csv={raw}", str(script)],
        env={**os.environ, **segments.runner_env(), "BASE": local_server},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == k6.EXIT_THRESHOLDS_FAILED, proc.stdout + proc.stderr
    exported = json.loads(summary_path.read_text())["metrics"]
    options = segments.inspect_options(binary, script, {"BASE": local_server})
    merged = merge.merge_files([raw], options["thresholds"])
    trend = exported["http_req_duration"]
    for stat in ("med", "min", "max", "p(90)", "p(95)", "p(99)", "p(99.9)"):
        assert merged.aggregate("http_req_duration", stat) == trend[stat], stat
    assert merged.aggregate("http_req_duration", "avg") == pytest.approx(trend["avg"], rel=1e-12)
    assert merged.aggregate("http_reqs", "count") == exported["http_reqs"]["count"]
    assert merged.aggregate("http_req_failed", "rate") == exported["http_req_failed"]["value"]
    assert merged.aggregate("iterations", "count") == exported["iterations"]["count"]
    # thresholds judged on the merge agree with k6's own (in the export, true = FAILED)
    outcomes = merge.judge_thresholds(merged, options["thresholds"])
    judged = {(t.metric, t.expression): t.ok for t in outcomes}
    k6_own = {
        (name, expr): not failed
        for name, m in exported.items()
        for expr, failed in m.get("thresholds", {}).items()
    }
    assert judged == k6_own
    assert judged[("http_req_duration", "p(99.9)<1")] is False
    assert judged[("http_reqs{name:fail}", "count<1")] is False
    merge.check_invariants(merged, options)  # 300 planned, one runner


# -- invariants --------------------------------------------------------------------------------


def test_an_empty_runner_is_named(tmp_path: Path) -> None:
    write_shard(tmp_path / "a.csv.gz", [(1_000_000, 1.0)], 1)
    write_shard(tmp_path / "b.csv.gz", [], 2)
    merged = merge.merge_files([tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"])
    with pytest.raises(RunError, match=r"runner 2 \(b.csv.gz\) is empty"):
        merge.check_invariants(merged, {})


def test_iterations_off_the_planned_rate_are_an_error(tmp_path: Path) -> None:
    write_shard(tmp_path / "a.csv.gz", [(j * 100_000, 1.0) for j in range(10)], 1)
    write_shard(tmp_path / "b.csv.gz", [(j * 100_000, 1.0) for j in range(4)], 2)
    merged = merge.merge_files([tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"])
    options = {"scenarios": {"s": {"executor": "constant-arrival-rate", "rate": 10,
                                   "timeUnit": "1s", "duration": "2s"}}}  # fmt: skip
    with pytest.raises(RunError, match=r"14 iterations \+ 0 dropped, planned 20.*runner 2: 4\+0"):
        merge.check_invariants(merged, options)
    options["scenarios"]["s"]["duration"] = "1.3s"  # 13 planned: 14 is within +-2 runners
    merge.check_invariants(merged, options)
    with pytest.raises(RunError, match=r"started 1.500 s apart"):
        merge.check_invariants(merged, options, start_skew_s=1.5, max_skew_s=1.0)


def test_requests_without_latency_samples_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join([HEADER, _row("http_reqs", 1, 1.0), _row("http_reqs", 2, 1.0),
                            _row("http_req_duration", 2, 3.0)]) + "\n")  # fmt: skip
    with pytest.raises(RunError, match="runner 1: 2 http_reqs but 1 latency samples"):
        merge.check_invariants(merge.merge_files([path]), {})


def test_a_second_resolution_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(HEADER + "\nhttp_reqs,2026-12-06T03:00:00Z,1.000000,,,,,,,,,s,,,,,,,\n")
    with pytest.raises(RunError, match=r"runner 1: .*line 2: bad sample .*unix_micro"):
        merge.merge_files([path])
