"""The Zipf query log: distinct queries with popularity weights, so that a few dominate.

As in real search logs; k and topic filters are mixed in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ci.seed.corpus import topics
from ci.seed.vocab import QUERY_TEMPLATES

QUERY_LOG_VERSION = 1


def generate_query_log(seed: int, distinct: int = 2000, zipf_s: float = 1.1) -> dict[str, Any]:
    """Distinct queries with Zipf popularity; k and topic filters mixed in."""
    rng = np.random.default_rng(seed + 1)
    all_topics = topics()
    queries: list[dict[str, Any]] = []
    seen: set[tuple[str, int, str | None]] = set()
    attempts = 0
    while len(queries) < distinct and attempts < distinct * 20:
        attempts += 1
        topic = all_topics[int(rng.integers(len(all_topics)))]
        tpl = QUERY_TEMPLATES[int(rng.integers(len(QUERY_TEMPLATES)))]
        text = tpl.format(
            sub=topic.sub, domain=topic.domain, w1=topic.words[int(rng.integers(len(topic.words)))]
        )
        k = int(rng.choice([10, 10, 10, 10, 20, 50, 100]))
        flt = topic.name if rng.random() < 0.1 else None
        key = (text, k, flt)
        if key in seen:
            continue
        seen.add(key)
        queries.append({"q": text, "k": k, "topic": flt})
    ranks = np.arange(1, len(queries) + 1, dtype=np.float64)
    weights = 1.0 / ranks**zipf_s
    weights /= weights.sum()
    for q, wgt in zip(queries, weights, strict=True):
        q["weight"] = float(wgt)
    top10 = float(weights[:10].sum())
    return {
        "version": QUERY_LOG_VERSION,
        "seed": seed,
        "zipf_s": zipf_s,
        "distinct": len(queries),
        "top10_share": round(top10, 4),
        "queries": queries,
    }


def write_query_log(run_dir: Path, seed: int) -> Path:
    path = run_dir / "corpus" / "querylog.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(generate_query_log(seed)))
    return path
