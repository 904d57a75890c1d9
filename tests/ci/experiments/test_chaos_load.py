"""ci.experiments.chaos_load: the httpx driver's open-model load against a local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ci.experiments.chaos_load import Load, httpx_driver, steady_load


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path.startswith("/v1/search?q=") else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # quiet: no access log
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(30)
def test_httpx_driver_sends_rate_times_duration_requests(base_url: str, tmp_path: Path) -> None:
    load = Load(base_url, rate=40, duration_s=0.5, unique_fraction=0.0, out=tmp_path)
    with steady_load(httpx_driver, load) as samples:
        pass
    assert len(samples) == 20
    assert [s.t for s in samples] == sorted(s.t for s in samples)
    assert {s.status for s in samples} == {200}
    assert not any(s.retry_after for s in samples)
    assert list(tmp_path.iterdir()) == []  # the httpx driver writes no files
