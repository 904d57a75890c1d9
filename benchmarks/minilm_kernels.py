"""The MiniLM model on int8 kernels against the shipped file: speed and what it changes.

``python -m benchmarks.minilm_kernels [--docs N] [--queries Q] [--rounds R]`` loads both
(``SEARCH_MINILM_KERNELS=int8`` and ``shipped``), warm, single-threaded, and prints JSON:

- **speed**: milliseconds per query text for batches of 1 and 8, the two models
  interleaved in each of ``R`` rounds; median and range over the rounds, and the ratio;
- **agreement**: the cosine between the two models' vectors of the same query;
- **retrieval**: the share of the shipped model's exact top 10 that the int8 model's exact
  top 10 finds, each model searching a corpus it embedded itself (the seeded synthetic
  corpus, ``N`` documents), over ``Q`` distinct queries of the seeded Zipf log.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ci.seed.corpus import generate_corpus
from ci.seed.querylog import generate_query_log
from service.embed.minilm import MiniLMEmbedder
from service.model import Vectors

KERNELS = ("int8", "shipped")
TOP = 10


def _ms_per_text(model: MiniLMEmbedder, texts: Sequence[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.embed_sync(texts[i : i + batch])
    return (time.perf_counter() - start) / len(texts) * 1000


def _embed(model: MiniLMEmbedder, texts: Sequence[str]) -> Vectors:
    return np.concatenate([model.embed_sync(texts[i : i + 8]) for i in range(0, len(texts), 8)])


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "low": round(min(values), 3),
        "high": round(max(values), 3),
    }


def run(docs: int, queries: int, rounds: int, seed: int) -> dict[str, Any]:
    models = {k: MiniLMEmbedder(threads=1, kernels=k) for k in KERNELS}
    log = generate_query_log(seed)["queries"]
    texts = [str(q["q"]) for q in log][:queries]
    if len(texts) < queries:
        raise SystemExit(f"--queries {queries}: the Zipf log holds {len(texts)} distinct")
    for m in models.values():
        m.embed_sync(texts[:8])  # load and warm
    speed: dict[str, dict[int, list[float]]] = {k: {1: [], 8: []} for k in KERNELS}
    sample = texts[:256]
    for r in range(rounds):
        order = KERNELS if r % 2 == 0 else KERNELS[::-1]
        for k in order:
            for batch in (1, 8):
                speed[k][batch].append(_ms_per_text(models[k], sample, batch))
    q_vecs = {k: _embed(m, texts) for k, m in models.items()}
    cos = np.sum(q_vecs["int8"] * q_vecs["shipped"], axis=1)
    corpus = [f"{d['title']}. {d['body']}" for d in generate_corpus(docs, seed)]
    tops = {}
    for k in KERNELS:
        d_vecs = _embed(MiniLMEmbedder(threads=2, kernels=k), corpus)  # every core
        scores = q_vecs[k] @ d_vecs.T
        tops[k] = np.argsort(-scores, axis=1)[:, :TOP]
    found = [
        len(set(a.tolist()) & set(b.tolist())) / TOP
        for a, b in zip(tops["int8"], tops["shipped"], strict=True)
    ]
    return {
        "rounds": rounds,
        "ms_per_text": {
            k: {f"batch_{b}": _spread(v) for b, v in by_batch.items()}
            for k, by_batch in speed.items()
        },
        "speedup": {
            f"batch_{b}": round(
                statistics.median(speed["shipped"][b]) / statistics.median(speed["int8"][b]), 2
            )
            for b in (1, 8)
        },
        "cosine_int8_vs_shipped": {
            "min": round(float(cos.min()), 4),
            "median": round(float(np.median(cos)), 4),
        },
        "top10_overlap": {
            "docs": docs,
            "queries": len(texts),
            "mean": round(float(np.mean(found)), 3),
            "min": round(float(np.min(found)), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(json.dumps(run(args.docs, args.queries, args.rounds, args.seed), indent=1))


if __name__ == "__main__":
    main()
