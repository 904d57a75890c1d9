"""Bulk-load a corpus: embed (with an on-disk cache), COPY, index.

``python -m service.db.loader --corpus corpus.jsonl --cache-dir DIR`` reads the database
and embedder from the same settings as the service (``DATABASE_URL``, ``SEARCH_*``).
The pipeline calls this as a process; it never imports the service.

Loading is skipped when the database already holds this corpus (same content hash and
model id); indexes are dropped before COPY and built after it, which is several times
faster than inserting into a live HNSW index.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from service.db.contract import SERVICE_ANN_INDEXES_SQL, IndexConfig
from service.db.schema import LOCK_SQL, SCHEMA_LOCK_KEY, SCHEMA_SQL
from service.embed.factory import model_cache_dir, model_id_for
from service.embed.hash import hash_embed
from service.embed.minilm import MiniLMEmbedder
from service.errors import ServiceError
from service.model import DIM, Vectors
from service.settings import Settings

# Small batches: padding to the longest text costs more than batching saves for
# ~100-token documents (measured: 19 ms/doc at batch 1, 24 ms/doc at 64, 2 threads).
EMBED_BATCH = 8


def read_corpus(path: Path) -> tuple[list[tuple[str, str, str]], str]:
    raw = path.read_bytes()
    docs = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            docs.append((str(obj["title"]), str(obj["body"]), str(obj["topic"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError(f"{path}:{n}: bad corpus line: {exc}") from exc
    return docs, hashlib.sha256(raw).hexdigest()


def embed_corpus(
    docs: list[tuple[str, str, str]], corpus_hash: str, settings: Settings, cache_dir: Path
) -> tuple[Vectors, bool]:
    model = model_id_for(settings)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model)
    cache = cache_dir / f"{corpus_hash[:24]}-{safe}.npy"
    if cache.exists():
        vectors = np.load(cache)
        if vectors.shape == (len(docs), DIM):
            return vectors.astype(np.float32, copy=False), True
    texts = [f"{title}. {body}" for title, body, _ in docs]
    if settings.embedder == "hash":
        vectors = hash_embed(texts)
    elif settings.embedder == "minilm":
        # bulk loading owns the machine: every core, whatever the service's setting
        embedder = MiniLMEmbedder(
            threads=max(os.cpu_count() or 1, settings.embed_threads),
            kernels=settings.minilm_kernels,
            cache_dir=model_cache_dir(settings),
        )
        parts = []
        start = time.monotonic()
        for i in range(0, len(texts), EMBED_BATCH):
            parts.append(embedder.embed_sync(texts[i : i + EMBED_BATCH]))
            done = min(i + EMBED_BATCH, len(texts))
            if (i // EMBED_BATCH) % 100 == 0 or done == len(texts):
                rate = done / max(time.monotonic() - start, 1e-6)
                eta = (len(texts) - done) / max(rate, 1e-6)
                print(
                    f"embedding {done}/{len(texts)} ({rate:.0f}/s, {eta:.0f} s left)",
                    file=sys.stderr,
                    flush=True,
                )
        vectors = np.concatenate(parts).astype(np.float32)
    else:
        raise ServiceError(f"SEARCH_EMBEDDER={settings.embedder!r} cannot bulk-load a corpus")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(cache)
    return vectors, False


async def load(settings: Settings, corpus: Path, cache_dir: Path, force: bool) -> dict[str, Any]:
    docs, corpus_hash = read_corpus(corpus)
    model = model_id_for(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await register_vector(conn)
        await conn.execute(SCHEMA_SQL)
        meta = dict(await conn.fetch("SELECT key, value FROM corpus_meta"))
        count = await conn.fetchval("SELECT count(*) FROM documents")
        same = (
            meta.get("corpus_hash") == corpus_hash
            and meta.get("model_id") == model
            and count == len(docs)
        )
        timings: dict[str, float] = {}
        cached = None
        if not same or force:
            t = time.monotonic()
            vectors, cached = embed_corpus(docs, corpus_hash, settings, cache_dir)
            timings["embed_s"] = time.monotonic() - t
            t = time.monotonic()
            async with conn.transaction():
                await conn.execute(LOCK_SQL, SCHEMA_LOCK_KEY)
                for (name,) in await conn.fetch(SERVICE_ANN_INDEXES_SQL):
                    await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
                await conn.execute("TRUNCATE documents RESTART IDENTITY")
                await conn.execute("DELETE FROM corpus_meta")
                await conn.copy_records_to_table(
                    "documents",
                    records=[(t_, b, tp, v) for (t_, b, tp), v in zip(docs, vectors, strict=True)],
                    columns=["title", "body", "topic", "embedding"],
                )
                await conn.executemany(
                    "INSERT INTO corpus_meta (key, value) VALUES ($1, $2)",
                    [("model_id", model), ("corpus_hash", corpus_hash), ("docs", str(len(docs)))],
                )
            timings["copy_s"] = time.monotonic() - t
            await conn.execute("ANALYZE documents")
        index = IndexConfig.from_settings(settings)
        ddl = index.ddl()
        if ddl is not None:
            t = time.monotonic()
            await conn.execute("SET maintenance_work_mem = '1GB'")
            await conn.execute(ddl)
            timings["index_s"] = time.monotonic() - t
        generation = None
        if settings.redis_url and (not same or force):
            generation = await _bump_cache_generation(settings.redis_url, settings.cache_log_size)
        return {
            "docs": len(docs),
            "model_id": model,
            "corpus_hash": corpus_hash,
            "cache_generation": generation,
            "loaded": not same or force,
            "embeddings_cached": cached,
            "index": index.name,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
    finally:
        await conn.close()


async def _bump_cache_generation(redis_url: str, log_size: int) -> int | None:
    """A re-seed changes the corpus: running services must stop serving cached results
    (the bump logs a ``reset`` record, which no cached entry survives).

    Best effort: with Redis down there is no cache to serve from either; the warning says
    so in case a service keeps stale L1/Redis entries until their TTL.
    """
    from service.cache.generation import bump_generation

    try:
        return await bump_generation(redis_url, log_size)
    except Exception as exc:  # any Redis failure only warrants a warning
        print(
            f"warning: could not bump the cache generation at {redis_url}: {exc}", file=sys.stderr
        )
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.db.loader", description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="JSON-lines corpus file")
    parser.add_argument("--cache-dir", type=Path, required=True, help="embedding cache folder")
    parser.add_argument("--force", action="store_true", help="reload even if already loaded")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        summary = asyncio.run(load(settings, args.corpus, args.cache_dir, args.force))
    except (ServiceError, OSError, asyncpg.PostgresError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
