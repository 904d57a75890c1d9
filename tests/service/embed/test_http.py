"""The pooled HTTP embedder against a real local server (http.server on a free port)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from service.embed.http import HttpEmbedder, HttpEmbedderConfig, retry_after_s
from service.errors import EmbeddingError
from service.model import DIM

pytestmark = pytest.mark.timeout(60)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    requests = 0
    script: list[int]  # statuses to answer before succeeding


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.server, _Server)
        self.server.connections += 1  # one handler per TCP connection

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        assert isinstance(self.server, _Server)
        server = self.server
        server.requests += 1
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if server.script:
            status = server.script.pop(0)
            payload = b'{"error":"busy"}'
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
        else:
            data = []
            for i, text in enumerate(body["input"]):
                vec = np.zeros(DIM, dtype=np.float32)
                vec[len(text) % DIM] = 2.0
                data.append({"embedding": vec.tolist(), "index": i})
            payload = json.dumps({"data": data[::-1], "model": body["model"]}).encode()
            self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.script = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _embedder(server: _Server, retries: int = 3) -> HttpEmbedder:
    host, port = server.server_address[:2]
    url = f"http://{host!s}:{port}/v1/embeddings"
    return HttpEmbedder(HttpEmbedderConfig(url=url, model="m", retries=retries, backoff_s=0.01))


async def test_vectors_come_back_in_input_order_and_normalised(server: _Server) -> None:
    emb = _embedder(server)
    try:
        vectors = await emb.embed(["a", "bbb"])
    finally:
        await emb.aclose()
    assert vectors.shape == (2, DIM)
    assert vectors[0][1] == pytest.approx(1.0)  # index 0 is "a": len 1, scaled to unit length
    assert vectors[1][3] == pytest.approx(1.0)
    assert emb.model_id == "http:m"


async def test_429_then_success_is_retried(server: _Server) -> None:
    server.script = [429, 503]
    emb = _embedder(server)
    try:
        vectors = await emb.embed(["hello"])
    finally:
        await emb.aclose()
    assert vectors.shape == (1, DIM)
    assert server.requests == 3
    assert emb.retries_done == 2


async def test_keep_alive_reuses_one_connection(server: _Server) -> None:
    emb = _embedder(server)
    try:
        for i in range(20):
            await emb.embed([f"text {i}"])
    finally:
        await emb.aclose()
    assert server.requests == 20
    assert server.connections == 1


async def test_other_errors_and_exhausted_retries_raise_embedding_error(server: _Server) -> None:
    server.script = [400]
    emb = _embedder(server)
    few = _embedder(server, retries=2)
    try:
        with pytest.raises(EmbeddingError, match="answered 400"):
            await emb.embed(["x"])
        server.script = [429, 429, 429]
        with pytest.raises(EmbeddingError, match="answered 429 after 3 attempt"):
            await few.embed(["x"])
    finally:
        await emb.aclose()
        await few.aclose()


def test_retry_after_parsing() -> None:
    assert retry_after_s("2") == 2.0
    assert retry_after_s("9999") == 30.0
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None
