"""The ``http`` embedder: an OpenAI-compatible ``/v1/embeddings`` endpoint.

One pooled :class:`httpx.AsyncClient` per process keeps connections alive across
requests (a TLS or TCP handshake per query would cost more than the embedding), with a
bound on connections so that a burst cannot open hundreds of sockets. 429 and 503 are
retried with exponential backoff and full jitter, waiting at least what ``Retry-After``
asks; transport errors (refused, reset, timeout) are retried the same way. Anything
else, or running out of retries, raises :class:`EmbeddingError` naming the status.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import numpy as np

from service.errors import ConfigError, EmbeddingError
from service.model import DIM, Vectors

RETRY_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class HttpEmbedderConfig:
    url: str  # the full endpoint, e.g. http://127.0.0.1:9000/v1/embeddings
    model: str
    api_key: str | None = None
    timeout_s: float = 10.0
    connect_timeout_s: float = 2.0
    retries: int = 3
    backoff_s: float = 0.1
    max_connections: int = 16

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"SEARCH_EMBED_HTTP_URL={self.url!r} is invalid: expected http(s)://")
        if not self.model:
            raise ConfigError("SEARCH_EMBED_HTTP_MODEL must not be empty")


def retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER_S)


class HttpEmbedder:
    """Embeds through a remote endpoint; the model id names the remote model."""

    def __init__(
        self,
        config: HttpEmbedderConfig,
        on_call: Callable[[int, float], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._on_call = on_call
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.retries_done = 0

    @property
    def model_id(self) -> str:
        return f"http:{self.config.model}"

    @property
    def loaded(self) -> bool:
        return True

    def _get_client(self) -> httpx.AsyncClient:
        # Created on first use, inside the running loop of this worker process.
        if self._client is None:
            cfg = self.config
            headers = {"content-type": "application/json"}
            if cfg.api_key:
                headers["authorization"] = f"Bearer {cfg.api_key}"
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(cfg.timeout_s, connect=cfg.connect_timeout_s),
                limits=httpx.Limits(
                    max_connections=cfg.max_connections,
                    max_keepalive_connections=cfg.max_connections,
                    keepalive_expiry=60.0,
                ),
                headers=headers,
                transport=self._transport,
            )
        return self._client

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        start = time.perf_counter()
        body = {"model": self.config.model, "input": list(texts)}
        client = self._get_client()
        attempt = 0
        while True:
            wait: float | None = None
            try:
                resp = await client.post(self.config.url, json=body)
            except httpx.TransportError as exc:
                if attempt >= self.config.retries:
                    raise EmbeddingError(
                        f"embedding endpoint {self.config.url} unreachable after "
                        f"{attempt + 1} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
            else:
                if resp.status_code == 200:
                    vectors = self._parse(resp, len(texts))
                    break
                if resp.status_code not in RETRY_STATUSES or attempt >= self.config.retries:
                    raise EmbeddingError(
                        f"embedding endpoint {self.config.url} answered {resp.status_code} "
                        f"after {attempt + 1} attempt(s): {resp.text[:200]!r}"
                    )
                wait = retry_after_s(resp.headers.get("retry-after"))
            backoff = random.uniform(0, self.config.backoff_s * 2**attempt)  # full jitter
            await asyncio.sleep(max(backoff, wait or 0.0))
            attempt += 1
            self.retries_done += 1
        if self._on_call is not None:
            self._on_call(len(texts), time.perf_counter() - start)
        return vectors

    def _parse(self, resp: httpx.Response, n: int) -> Vectors:
        try:
            payload: Any = resp.json()
            data = payload["data"]
            if not isinstance(data, list) or len(data) != n:
                raise ValueError(
                    f"expected {n} embeddings, got {type(data).__name__} "
                    f"of length {len(data) if isinstance(data, list) else '?'}"
                )
            out = np.zeros((n, DIM), dtype=np.float32)
            seen = set()
            for item in data:
                index = int(item["index"])
                if not 0 <= index < n or index in seen:
                    raise ValueError(f"bad or repeated index {index}")
                seen.add(index)
                vec = np.asarray(item["embedding"], dtype=np.float32)
                if vec.shape != (DIM,):
                    raise ValueError(f"embedding {index} has shape {vec.shape}, expected ({DIM},)")
                out[index] = vec
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(
                f"embedding endpoint {self.config.url} sent a malformed response: {exc}"
            ) from exc
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.clip(norms, 1e-12, None), dtype=np.float32)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
