"""ci.measure.vegeta: parsing vegeta's report and encoded results; the real binary's attack."""

from __future__ import annotations

import http.server
import itertools
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci.errors import RunError
from ci.measure import vegeta, vegeta_targets
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


class _Service(http.server.BaseHTTPRequestHandler):
    """Answers like the search service: searches 200, ingests 201 with ids, deletes 204."""

    next_id = 100

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200, b'{"results":[],"took_ms":0.1}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1/documents":
            type(self).next_id += 1
            self._reply(201, json.dumps({"ids": [type(self).next_id]}).encode())
        else:
            self._reply(200, b'{"results":[],"took_ms":0.1}')

    def do_DELETE(self) -> None:
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def fake_service() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(60)
def test_the_real_vegeta_attacks_encodes_and_reports(fake_service: str, tmp_path: Path) -> None:
    """Where the binary exists (``go install``, the nox sessions): attack, encode, report."""
    binary = vegeta.find_vegeta()
    if binary is None:
        pytest.skip("vegeta is not on PATH (no Go here): the k6 fallback covers the scenario")
    log = tmp_path / "querylog.json"
    log.write_text(json.dumps(generate_query_log(seed=2, distinct=50)))
    targets = vegeta_targets.write_json_targets(
        log, fake_service, tmp_path / "t.jsonl", count=60, seed=1,
        write_fraction=0.2, scratch_ids=range(1, 30),
    )  # fmt: skip
    files = vegeta.attack(binary, targets, rate=50, duration_s=1, out_dir=tmp_path)
    hits = vegeta.parse_encoded(files.encoded.read_text().splitlines(), str(files.encoded))
    report = vegeta.parse_report(json.loads(files.report.read_text()), str(files.report))
    text = files.text_report.read_text()
    assert len(hits) == report.requests == 50  # -rate=50/s -duration=1s
    assert report.success == 1.0
    assert {h.code for h in hits} <= {200, 201, 204}
    assert 201 in {h.code for h in hits}
    assert "Requests" in text
    assert "Success" in text
    assert "100.00%" in text
    posted = vegeta_targets.posted_ids(files.encoded.read_text().splitlines())
    assert len(posted) == [h.code for h in hits].count(201)
    assert len(set(posted)) == len(posted)
    assert (vegeta.vegeta_version(binary) or "")[:1].isdigit()  # from -ldflags or build info


@pytest.mark.timeout(60)
def test_two_vegeta_runners_split_the_rate_and_merge_exactly(
    fake_service: str, tmp_path: Path
) -> None:
    binary = vegeta.find_vegeta()
    if binary is None:
        pytest.skip("vegeta is not on PATH (no Go here): the k6 fallback covers the scenario")
    log = tmp_path / "querylog.json"
    log.write_text(json.dumps(generate_query_log(seed=2, distinct=50)))
    targets = vegeta_targets.write_json_targets(
        log, fake_service, tmp_path / "t.jsonl", count=60, seed=1,
        write_fraction=0.2, scratch_ids=range(1, 30),
    )  # fmt: skip
    files = vegeta.attack(binary, targets, rate=50, duration_s=1, out_dir=tmp_path, runners=2)
    assert [p.name for p in files.results] == [f"vegeta.runner-{i}.results.bin" for i in (1, 2)]
    per_runner = []
    for path in files.results:  # each runner at rate/2: 25 requests in the second
        out = subprocess.run([str(binary), "encode", "-to=json", str(path)], capture_output=True)
        per_runner.append(vegeta.parse_encoded(out.stdout.decode().splitlines()))
    assert [len(hits) for hits in per_runner] == [25, 25]
    hits = vegeta.parse_encoded(files.encoded.read_text().splitlines(), str(files.encoded))
    assert sorted(hits, key=lambda h: h.timestamp) == sorted(
        [*per_runner[0], *per_runner[1]], key=lambda h: h.timestamp
    )  # every sample of both runners, nothing else
    report = vegeta.parse_report(json.loads(files.report.read_text()), str(files.report))
    assert report.requests == 50  # vegeta's own report of the two files
    assert "Requests" in files.text_report.read_text()
    deletes = [t for t in targets.read_text().splitlines() if '"DELETE"' in t]
    sent = (tmp_path / "vegeta.runner-1.targets.jsonl").read_text().splitlines()
    sent += (tmp_path / "vegeta.runner-2.targets.jsonl").read_text().splitlines()
    assert sorted(t for t in sent if '"DELETE"' in t) == sorted(deletes)  # each write once
