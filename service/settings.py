"""The service's one settings object, read once from the environment at start-up.

Every optimisation is switchable here so that its effect can be measured. Variables
are prefixed ``SEARCH_`` except the two URLs that tools conventionally share
(``DATABASE_URL``, ``REDIS_URL``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeVar, get_args

from service.errors import ConfigError

IndexMode = Literal["hnsw", "ivfflat", "exact"]
VectorType = Literal["vector", "halfvec"]
EmbedderName = Literal["minilm", "hash", "http"]
MiniLMKernels = Literal["int8", "shipped"]

INDEX_MODES: tuple[str, ...] = get_args(IndexMode)
VECTOR_TYPES: tuple[str, ...] = get_args(VectorType)
EMBEDDERS: tuple[str, ...] = get_args(EmbedderName)
MINILM_KERNELS: tuple[str, ...] = get_args(MiniLMKernels)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    """Typed, validated settings. Build with :func:`Settings.from_env`."""

    database_url: str = "postgresql://postgres@127.0.0.1:15432/postgres"
    redis_url: str | None = None
    # database
    # connections opened at start, at most pool_max_size: one opened under load costs the
    # request that waits for it 100-250 ms here (a backend forked, the vector codec looked up)
    # and the event loop its handshake; 20 = a warm pool (docs/profiling.md)
    pool_min_size: int = 20
    # `perfci sweep pool` (README): 5-40 give the same throughput for the cached search mix;
    # under SSE overload a larger pool trades 503s for latency. 20 sits in the middle.
    pool_max_size: int = 20
    pool_acquire_timeout_s: float = 2.0
    statement_timeout_ms: int = 5000
    index_mode: IndexMode = "hnsw"
    vector_type: VectorType = "vector"
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 80
    ivfflat_lists: int = 100
    ivfflat_probes: int = 10
    create_index_on_start: bool = True
    # embedding
    embedder: EmbedderName = "minilm"
    embed_http_url: str | None = None
    embed_http_model: str = "all-MiniLM-L6-v2"
    embed_threads: int = 1
    # int8: the matrix products on int8 kernels (service/embed/quantize.py, 3x faster per
    # query); shipped: the shipped ONNX file as it is. Different vectors, different model ids
    minilm_kernels: MiniLMKernels = "int8"
    model_cache_dir: str | None = None  # where the int8 file is made; ~/.cache/vector-search
    embed_http_api_key: str | None = None
    embed_http_timeout_s: float = 10.0
    embed_http_connect_timeout_s: float = 2.0
    embed_http_retries: int = 3
    embed_http_backoff_s: float = 0.1
    embed_http_max_connections: int = 16
    # cache (decision table in service/cache/__init__.py; docs/cache.md)
    cache_enabled: bool = True  # result cache (L1 + Redis); needs REDIS_URL
    l1_enabled: bool = True  # in-process LRU in front of Redis
    l1_size: int = 10_000  # entries per L1 (results and embeddings each)
    l1_ttl_s: float = 60.0  # upper bound on an L1 entry's life
    result_ttl_s: float = 300.0
    embedding_ttl_s: float = 86_400.0
    ttl_jitter: float = 0.1  # TTLs are stretched by a random 0..jitter fraction
    embed_cache_enabled: bool = True  # query text -> vector (L1 + Redis)
    redis_timeout_ms: int = 50  # every Redis call; beyond it the cache is skipped
    breaker_failures: int = 5  # consecutive Redis errors that open the breaker
    breaker_cooldown_s: float = 2.0  # open -> half-open probe after this
    xfetch_beta: float = 1.0  # XFetch early recomputation; 0 turns it off
    stream_cache_max_k: int = 100  # a streamed (uncached) result fills the cache up to this k
    redis_lock_enabled: bool = False  # cross-worker lock on a cold key (measured: docs/cache.md)
    redis_lock_ttl_ms: int = 2000
    cache_validate: bool = True  # serve an older entry if the write log shows no change to it
    cache_log_size: int = 10_000  # write-log records kept in Redis (and per worker) for that
    # request coalescing and embedding micro-batching
    coalesce_enabled: bool = True
    batch_enabled: bool = True
    batch_max_size: int = 32
    # the longest a batch waits behind a busy model call; an idle model gets it at once
    batch_max_wait_ms: float = 5.0  # (service/embed/batch.py; docs/cache.md)
    # the searches of one event-loop turn in one statement (service/db/batch.py)
    db_batch_enabled: bool = True
    # search API
    max_k: int = 1000
    max_query_chars: int = 2000
    stream_batch_size: int = 50
    max_body_bytes: int = 1_000_000
    max_documents_per_request: int = 1000
    admin_token: str | None = None
    max_in_flight: int = 512  # search requests in flight per worker beyond which 503; 0: off
    # SSE streams (service/limits.py, service/stream_search.py, service/http/stream.py)
    max_streams: int = 4096  # open streams per worker beyond which 503; 0: off
    # stream queries that search at once per worker: the rest queue for a slot while the
    # queue's estimated wait stays within stream_max_queue_wait_s; beyond it, 503
    # (service/limits.py). At most the pool's size (capped): queued streams wait in this
    # queue, not on the pool (whose acquire times out), and /v1/search keeps connections
    stream_query_slots: int = 10
    stream_max_queue_wait_s: float = 10.0
    stream_write_timeout_s: float = 30.0  # a send waiting longer on its reader ends the stream
    stream_cache_mb: float = 64.0  # encoded stream results kept per worker; 0: none
    # debug knobs: measured faults for calibration and chaos experiments
    debug_db_delay_ms: int = 0
    debug_request_delay_ms: int = 0
    # each /v1/search* request burns this share of the process's CPU per request (0.10 =
    # +10 %; service/http/cpu_slowdown.py): the multiplicative slowdown `perfci calibrate` uses
    debug_cpu_slowdown: float = 0.0
    debug_leak_responses: bool = False  # keep every search response body: a deliberate leak
    # garbage collector (service/gcstats.py)
    gc_freeze: bool = True  # gc.freeze() once start-up is done
    gc_thresholds: str | None = None  # "700,10,10" -> gc.set_threshold; unset: Python's own

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``SEARCH_*``, ``DATABASE_URL``, ``REDIS_URL``; raise ConfigError on bad values."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = _env_name(f.name)
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            default = getattr(cls, f.name, None)
            values[f.name] = _parse(name, raw, f.type, default)
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def stream_slots(self) -> int:
        """``SEARCH_STREAM_QUERY_SLOTS``, capped by ``SEARCH_POOL_MAX_SIZE``."""
        return min(self.stream_query_slots, self.pool_max_size)

    @property
    def pool_opened_at_start(self) -> int:
        """``SEARCH_POOL_MIN_SIZE``, capped by ``SEARCH_POOL_MAX_SIZE``."""
        return min(self.pool_min_size, self.pool_max_size)

    def validate(self) -> None:
        _check(self.pool_min_size >= 0, "SEARCH_POOL_MIN_SIZE", self.pool_min_size, ">= 0")
        _check(self.pool_max_size >= 1, "SEARCH_POOL_MAX_SIZE", self.pool_max_size, ">= 1")
        _check(
            self.pool_acquire_timeout_s > 0,
            "SEARCH_POOL_ACQUIRE_TIMEOUT_S",
            self.pool_acquire_timeout_s,
            "> 0",
        )
        _check(
            self.index_mode in INDEX_MODES,
            "SEARCH_INDEX_MODE",
            self.index_mode,
            f"one of {', '.join(INDEX_MODES)}",
        )
        _check(
            self.vector_type in VECTOR_TYPES,
            "SEARCH_VECTOR_TYPE",
            self.vector_type,
            f"one of {', '.join(VECTOR_TYPES)}",
        )
        _check(
            self.embedder in EMBEDDERS,
            "SEARCH_EMBEDDER",
            self.embedder,
            f"one of {', '.join(EMBEDDERS)}",
        )
        _check(2 <= self.hnsw_m <= 100, "SEARCH_HNSW_M", self.hnsw_m, "between 2 and 100")
        _check(
            4 <= self.hnsw_ef_construction <= 1000,
            "SEARCH_HNSW_EF_CONSTRUCTION",
            self.hnsw_ef_construction,
            "between 4 and 1000",
        )
        _check(
            1 <= self.hnsw_ef_search <= 1000,
            "SEARCH_HNSW_EF_SEARCH",
            self.hnsw_ef_search,
            "between 1 and 1000",
        )
        _check(
            1 <= self.ivfflat_lists <= 32768,
            "SEARCH_IVFFLAT_LISTS",
            self.ivfflat_lists,
            "between 1 and 32768",
        )
        _check(
            1 <= self.ivfflat_probes <= self.ivfflat_lists,
            "SEARCH_IVFFLAT_PROBES",
            self.ivfflat_probes,
            "between 1 and SEARCH_IVFFLAT_LISTS",
        )
        _check(1 <= self.max_k <= 10000, "SEARCH_MAX_K", self.max_k, "between 1 and 10000")
        _check(
            self.stream_batch_size >= 1, "SEARCH_STREAM_BATCH_SIZE", self.stream_batch_size, ">= 1"
        )
        _check(
            0 <= self.max_in_flight <= 100_000,
            "SEARCH_MAX_IN_FLIGHT",
            self.max_in_flight,
            "between 0 (off) and 100000",
        )
        _check(
            0 <= self.max_streams <= 1_000_000,
            "SEARCH_MAX_STREAMS",
            self.max_streams,
            "between 0 (off) and 1000000",
        )
        _check(
            self.stream_query_slots >= 1,
            "SEARCH_STREAM_QUERY_SLOTS",
            self.stream_query_slots,
            ">= 1",
        )
        _check(
            0 <= self.stream_max_queue_wait_s <= 3600,
            "SEARCH_STREAM_MAX_QUEUE_WAIT_S",
            self.stream_max_queue_wait_s,
            "between 0 (no queue once a wait is measured) and 3600",
        )
        _check(
            0 < self.stream_write_timeout_s <= 3600,
            "SEARCH_STREAM_WRITE_TIMEOUT_S",
            self.stream_write_timeout_s,
            "between 0 (exclusive) and 3600",
        )
        _check(
            0 <= self.stream_cache_mb <= 65536,
            "SEARCH_STREAM_CACHE_MB",
            self.stream_cache_mb,
            "between 0 (off) and 65536",
        )
        _check(self.embed_threads >= 1, "SEARCH_EMBED_THREADS", self.embed_threads, ">= 1")
        _check(
            self.minilm_kernels in MINILM_KERNELS,
            "SEARCH_MINILM_KERNELS",
            self.minilm_kernels,
            f"one of {', '.join(MINILM_KERNELS)}",
        )
        _check(
            0 <= self.debug_db_delay_ms <= 60_000,
            "SEARCH_DEBUG_DB_DELAY_MS",
            self.debug_db_delay_ms,
            "between 0 and 60000",
        )
        _check(
            0 <= self.debug_request_delay_ms <= 60_000,
            "SEARCH_DEBUG_REQUEST_DELAY_MS",
            self.debug_request_delay_ms,
            "between 0 and 60000",
        )
        _check(
            0 <= self.debug_cpu_slowdown <= 10,
            "SEARCH_DEBUG_CPU_SLOWDOWN",
            self.debug_cpu_slowdown,
            "between 0 (off) and 10",
        )
        _check(
            self.embed_http_timeout_s > 0,
            "SEARCH_EMBED_HTTP_TIMEOUT_S",
            self.embed_http_timeout_s,
            "> 0",
        )
        _check(
            self.embed_http_connect_timeout_s > 0,
            "SEARCH_EMBED_HTTP_CONNECT_TIMEOUT_S",
            self.embed_http_connect_timeout_s,
            "> 0",
        )
        _check(
            0 <= self.embed_http_retries <= 10,
            "SEARCH_EMBED_HTTP_RETRIES",
            self.embed_http_retries,
            "between 0 and 10",
        )
        _check(
            self.embed_http_backoff_s >= 0,
            "SEARCH_EMBED_HTTP_BACKOFF_S",
            self.embed_http_backoff_s,
            ">= 0",
        )
        _check(
            self.embed_http_max_connections >= 1,
            "SEARCH_EMBED_HTTP_MAX_CONNECTIONS",
            self.embed_http_max_connections,
            ">= 1",
        )
        _check(
            1 <= self.l1_size <= 10_000_000,
            "SEARCH_L1_SIZE",
            self.l1_size,
            "between 1 and 10000000",
        )
        for name, value in (
            ("SEARCH_L1_TTL_S", self.l1_ttl_s),
            ("SEARCH_RESULT_TTL_S", self.result_ttl_s),
            ("SEARCH_EMBEDDING_TTL_S", self.embedding_ttl_s),
            ("SEARCH_BREAKER_COOLDOWN_S", self.breaker_cooldown_s),
        ):
            _check(0 < value <= 30 * 86_400, name, value, "between 0 (exclusive) and 2592000")
        _check(0 <= self.ttl_jitter <= 1, "SEARCH_TTL_JITTER", self.ttl_jitter, "between 0 and 1")
        _check(
            1 <= self.redis_timeout_ms <= 10_000,
            "SEARCH_REDIS_TIMEOUT_MS",
            self.redis_timeout_ms,
            "between 1 and 10000",
        )
        _check(
            1 <= self.breaker_failures <= 1000,
            "SEARCH_BREAKER_FAILURES",
            self.breaker_failures,
            "between 1 and 1000",
        )
        _check(
            0 <= self.xfetch_beta <= 100,
            "SEARCH_XFETCH_BETA",
            self.xfetch_beta,
            "between 0 and 100",
        )
        _check(
            0 <= self.stream_cache_max_k <= self.max_k,
            "SEARCH_STREAM_CACHE_MAX_K",
            self.stream_cache_max_k,
            "between 0 and SEARCH_MAX_K",
        )
        _check(
            10 <= self.redis_lock_ttl_ms <= 60_000,
            "SEARCH_REDIS_LOCK_TTL_MS",
            self.redis_lock_ttl_ms,
            "between 10 and 60000",
        )
        _check(
            1 <= self.cache_log_size <= 1_000_000,
            "SEARCH_CACHE_LOG_SIZE",
            self.cache_log_size,
            "between 1 and 1000000",
        )
        _check(
            1 <= self.batch_max_size <= 1024,
            "SEARCH_BATCH_MAX_SIZE",
            self.batch_max_size,
            "between 1 and 1024",
        )
        _check(
            0 <= self.batch_max_wait_ms <= 1000,
            "SEARCH_BATCH_MAX_WAIT_MS",
            self.batch_max_wait_ms,
            "between 0 and 1000",
        )
        self.gc_threshold_values()  # raises ConfigError on a bad SEARCH_GC_THRESHOLDS
        if self.embedder == "http":
            _check(
                bool(self.embed_http_url),
                "SEARCH_EMBED_HTTP_URL",
                self.embed_http_url,
                "set when SEARCH_EMBEDDER=http",
            )

    def gc_threshold_values(self) -> tuple[int, int, int] | None:
        """``SEARCH_GC_THRESHOLDS`` as three integers, or None when unset."""
        if self.gc_thresholds is None:
            return None
        parts = [p.strip() for p in self.gc_thresholds.split(",")]
        ok = len(parts) == 3 and all(p.isdigit() for p in parts)
        _check(
            ok, "SEARCH_GC_THRESHOLDS", self.gc_thresholds, "three integers >= 0, e.g. 700,10,10"
        )
        a, b, c = (int(p) for p in parts)
        return a, b, c

    def public(self) -> dict[str, Any]:
        """Settings safe to report (no secrets, no credentials in URLs)."""
        out = asdict(self)
        out["admin_token"] = "set" if self.admin_token else None
        out["embed_http_api_key"] = "set" if self.embed_http_api_key else None
        out["database_url"] = _strip_password(self.database_url)
        out["redis_url"] = _strip_password(self.redis_url) if self.redis_url else None
        return out


def _env_name(field_name: str) -> str:
    if field_name in ("database_url", "redis_url"):
        return field_name.upper()
    return "SEARCH_" + field_name.upper()


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={value!r} is invalid: expected {expected}")


_BOOLS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _parse(name: str, raw: str, annotation: object, default: object) -> object:
    text = str(annotation)
    parsers: dict[str, Callable[[str], object]] = {"int": int, "float": float}
    try:
        if text == "bool":
            if raw.strip().lower() not in _BOOLS:
                raise ValueError(raw)
            return _BOOLS[raw.strip().lower()]
        if text in parsers:
            return parsers[text](raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is invalid: expected {text}") from exc
    del default
    return raw.strip()


def _strip_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
