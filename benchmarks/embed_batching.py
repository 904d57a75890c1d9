"""Embedding throughput with and without micro-batching: 32 concurrent distinct queries.

``python benchmarks/embed_batching.py [--rounds N] [--wait-ms W] [--size S]`` runs the
MiniLM embedder in-process (no server), warm, and prints queries/s for both set-ups and
their ratio as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from service.embed.batch import BatchingEmbedder
from service.embed.minilm import MiniLMEmbedder
from service.embed.protocol import Embedder

CONCURRENCY = 32


async def _rate(embedder: Embedder, rounds: int) -> float:
    await embedder.embed(["warm up"])
    start = time.perf_counter()
    for r in range(rounds):
        texts = [f"query {r} number {i} about telescopes and bread" for i in range(CONCURRENCY)]
        await asyncio.gather(*[embedder.embed([t]) for t in texts])
    return rounds * CONCURRENCY / (time.perf_counter() - start)


async def main(rounds: int, wait_ms: float, size: int) -> dict[str, float]:
    model = MiniLMEmbedder(threads=1)
    plain = await _rate(model, rounds)
    batched = await _rate(BatchingEmbedder(model, size, wait_ms / 1000), rounds)
    return {
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "batch_max_size": size,
        "batch_max_wait_ms": wait_ms,
        "unbatched_qps": round(plain, 1),
        "batched_qps": round(batched, 1),
        "ratio": round(batched / plain, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--wait-ms", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rounds, args.wait_ms, args.size))))
