"""Both codes on the base's graph are asked each query back to back, first one, then the other
side first: over real HTTP, two loopback servers that log what reaches them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ci.experiments.gate.quality import SampleQuery, paired_answers

ARRIVALS: list[tuple[str, str]] = []  # (query, server name), in the order they arrived
_LOCK = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = self.server.server_address[1]  # type: ignore[index]
        with _LOCK:
            ARRIVALS.append((body["query"], str(name)))
        hit = 1 if body["query"].endswith("0") else 2
        payload = json.dumps({"results": [{"id": hit, "score": 0.5}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def two_servers() -> Iterator[tuple[str, str]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    ARRIVALS.clear()
    base, candidate = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    try:
        yield base, candidate
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_each_query_goes_to_both_and_the_first_asked_alternates(
    two_servers: tuple[str, str],
) -> None:
    sample = [SampleQuery(f"query {i}", None) for i in range(40)]
    with httpx.Client(timeout=10.0) as client:
        first, second = paired_answers(client, two_servers, sample)
    assert first == second == tuple([(1, 0.5)] if i % 10 == 0 else [(2, 0.5)] for i in range(40))
    ports = [url.rsplit(":", 1)[1] for url in two_servers]
    for i, q in enumerate(sample):
        arrived = [name for query, name in ARRIVALS if query == q.text]
        assert arrived == ([ports[1], ports[0]] if i % 2 else ports), q.text
