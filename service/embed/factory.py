"""Build the configured embedder from the settings: the only module that picks one.

============  ======================================  ===============================
embedder      module                                  model id
============  ======================================  ===============================
hash          :mod:`service.embed.hash`               ``hash-v4-384``
minilm        :mod:`service.embed.minilm`             all-MiniLM-L6-v2 (int8 ONNX; kernels)
http          :mod:`service.embed.http`               ``http:<SEARCH_EMBED_HTTP_MODEL>``
============  ======================================  ===============================

With ``SEARCH_BATCH_ENABLED`` the chosen embedder is wrapped in the micro-batcher.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from service.embed.batch import BatchingEmbedder
from service.embed.hash import HashEmbedder
from service.embed.minilm import MODEL_IDS, MiniLMEmbedder
from service.embed.protocol import Embedder
from service.errors import ConfigError
from service.settings import Settings

if TYPE_CHECKING:
    from service.embed.http import HttpEmbedderConfig

OnCall = Callable[[int, float], None]


def make_embedder(
    name: str,
    *,
    threads: int = 1,
    on_call: OnCall | None = None,
    http: HttpEmbedderConfig | None = None,
    kernels: str = "int8",
    cache_dir: Path | None = None,
) -> Embedder:
    if name == "hash":
        return HashEmbedder(on_call=on_call)
    if name == "minilm":
        return MiniLMEmbedder(
            threads=threads, on_call=on_call, kernels=kernels, cache_dir=cache_dir
        )
    if name == "http":
        if http is None:
            raise ConfigError("SEARCH_EMBEDDER=http needs SEARCH_EMBED_HTTP_URL")
        # imported only when chosen: the other embedders never load httpx
        from service.embed.http import HttpEmbedder

        return HttpEmbedder(http, on_call=on_call)
    raise ConfigError(f"SEARCH_EMBEDDER={name!r} is invalid: expected hash, minilm or http")


def http_config(settings: Settings) -> HttpEmbedderConfig:
    from service.embed.http import HttpEmbedderConfig

    assert settings.embed_http_url, "validate() requires SEARCH_EMBED_HTTP_URL for http"
    return HttpEmbedderConfig(
        url=settings.embed_http_url,
        model=settings.embed_http_model,
        api_key=settings.embed_http_api_key,
        timeout_s=settings.embed_http_timeout_s,
        connect_timeout_s=settings.embed_http_connect_timeout_s,
        retries=settings.embed_http_retries,
        backoff_s=settings.embed_http_backoff_s,
        max_connections=settings.embed_http_max_connections,
    )


def embedder_from_settings(settings: Settings, on_call: OnCall | None = None) -> Embedder:
    """The service's embedder: the configured one, batched unless batching is off."""
    http = http_config(settings) if settings.embedder == "http" else None
    base = make_embedder(
        settings.embedder,
        threads=settings.embed_threads,
        on_call=on_call,
        http=http,
        kernels=settings.minilm_kernels,
        cache_dir=model_cache_dir(settings),
    )
    if not settings.batch_enabled:
        return base
    return BatchingEmbedder(base, settings.batch_max_size, settings.batch_max_wait_ms / 1000)


def model_cache_dir(settings: Settings) -> Path | None:
    """``SEARCH_MODEL_CACHE_DIR``, or None for the default (``quantize.default_cache_dir``)."""
    return Path(settings.model_cache_dir) if settings.model_cache_dir else None


def model_id_for(settings: Settings) -> str:
    """The model id the bulk loader records (hash or minilm: the loader embeds locally)."""
    if settings.embedder == "hash":
        return HashEmbedder.model_id
    return MODEL_IDS[settings.minilm_kernels]
