"""All-unique queries: an endless, deterministic sequence in which no text repeats.

Every request a cache miss: the load that measures a service's miss path. Each query is
built like the Zipf log's (a query template over a topic, the same mix of k and topic
filters) and ends in three vocabulary words that spell (a bijection of) its position in the
sequence in base ``len(SUFFIX_WORDS)``, so two positions never give the same text and no text equals
a log entry (which is a bare template). Query ``i`` depends only on ``(seed, i)``: a run
can hand out disjoint slices and never send a text twice, whatever the slice sizes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ci.errors import SeedError
from ci.seed.corpus import topics
from ci.seed.querylog import QUERY_LOG_VERSION
from ci.seed.vocab import QUERY_TEMPLATES

SUFFIX_WORDS: tuple[str, ...] = tuple(sorted({w for t in topics() for w in t.words}))
SUFFIX_LEN = 3
CAPACITY = len(SUFFIX_WORDS) ** SUFFIX_LEN  # distinct positions
# A bijection of the positions, so that neighbours do not share their first words.
_SPREAD = 2_654_435_761
K_CHOICES = (10, 10, 10, 10, 20, 50, 100)  # as the Zipf log's
TOPIC_FILTER_SHARE = 0.1  # as the Zipf log's


def suffix(position: int) -> str:
    """Three words only ``position`` gives: a bijection of it in base ``len(SUFFIX_WORDS)``."""
    if not 0 <= position < CAPACITY:
        raise SeedError(f"query position {position} is outside 0..{CAPACITY - 1}")
    base = len(SUFFIX_WORDS)
    position = (position + 1) * _SPREAD % CAPACITY
    digits = []
    for _ in range(SUFFIX_LEN):
        position, d = divmod(position, base)
        digits.append(SUFFIX_WORDS[d])
    return " ".join(reversed(digits))


def unique_queries(seed: int, start: int, count: int) -> list[dict[str, Any]]:
    """Queries ``start`` .. ``start + count - 1`` of the sequence of ``seed``."""
    if start < 0 or count < 0 or start + count > CAPACITY:
        raise SeedError(f"unique queries {start}..{start + count}: outside 0..{CAPACITY}")
    all_topics = topics()
    out: list[dict[str, Any]] = []
    for i in range(start, start + count):
        rng = np.random.default_rng([seed, i])
        topic = all_topics[int(rng.integers(len(all_topics)))]
        tpl = QUERY_TEMPLATES[int(rng.integers(len(QUERY_TEMPLATES)))]
        w1 = topic.words[int(rng.integers(len(topic.words)))]
        text = tpl.format(sub=topic.sub, domain=topic.domain, w1=w1)
        k = int(K_CHOICES[int(rng.integers(len(K_CHOICES)))])
        flt = topic.name if rng.random() < TOPIC_FILTER_SHARE else None
        out.append({"q": f"{text} {suffix(i)}", "k": k, "topic": flt, "weight": 1.0})
    return out


def write_query_file(path: Path, queries: list[dict[str, Any]], **meta: Any) -> Path:
    """A file in the query log's format (what ``scenarios/lib/query.js`` reads)."""
    if not queries:
        raise SeedError(f"{path}: no queries to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": QUERY_LOG_VERSION, **meta, "distinct": len(queries), "queries": queries}
    path.write_text(json.dumps(doc))
    return path
