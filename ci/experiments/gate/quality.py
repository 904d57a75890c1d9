"""The gate's recall check: each side answers a fixed query sample, scored by its own exact scan.

After the windows, each side's service answers ``gate.quality_queries`` searches (k = 10,
half with a topic filter) drawn with a fixed seed from the seeded query log. The truth for
each side is its exact top-k, computed by a short-lived *truth service* of that side: the
side's own code, in its own venv, against the side's own database, with
``SEARCH_INDEX_MODE=exact`` (the query/index contract's recall reference: no index, a full
scan) and its caches off. Both are asked over the published HTTP contract; ci/ sends no SQL.

Why the side's own exact scan, and not one truth for both:

==========================================  ==============================================
a candidate that ...                        measured against its own exact scan
==========================================  ==============================================
changes an ANN setting (``ef_search``,      the same vectors, an exact scan of them: the
``m``, iterative scans) or the index type   recall drop is the setting's
changes the embedding model or the vectors  its own vectors' exact neighbours: a model
                                            change is not mistaken for a recall drop (it
                                            changes *what* is relevant, which recall@k
                                            cannot judge)
changes the ranking code for every mode     blind here (its truth moves with it); the
                                            latency and error metrics still judge it
==========================================  ==============================================

A brute-force scan in numpy over the seeding's cached corpus embeddings would be cheaper
but knows only the base's model, and it would miss the side's own writes. A hit counts as
found when its id is in the exact top-k or its score ties the k-th exact score (equal
distances are ordered arbitrarily). The figures go into ``verdict.json`` and
:mod:`ci.judge.quality` decides.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from ci.errors import RunError, SideFailure
from ci.results.duet import Side
from ci.results.quality import QualityRun, SideQuality
from ci.stack import ServerSet, service_readiness

K = 10
IN_FLIGHT = 4  # sample queries answered at once per side (the side's own batching helps)
TIE_EPS = 1e-6  # scores closer than this to the k-th exact score tie with it
TRUTH_REDIS_DB = 15  # the truth services run with their caches off; a db no side uses
TRUTH_ENV = {
    "SEARCH_INDEX_MODE": "exact",
    "SEARCH_CACHE_ENABLED": "false",
    "SEARCH_EMBED_CACHE_ENABLED": "false",
    "SEARCH_CREATE_INDEX_ON_START": "false",
}


@dataclass(frozen=True, slots=True)
class SampleQuery:
    text: str
    topic: str | None


@dataclass(frozen=True, slots=True)
class QualityTarget:
    """One side: its measured service and its truth service."""

    url: str
    truth_url: str


def quality_sample(query_log: Path, n: int, seed: int) -> tuple[SampleQuery, ...]:
    """``n`` distinct queries from the query log, half of them with a topic filter.

    The log filters about one query in ten; when it has fewer filtered queries than half
    the sample, unfiltered ones are given a topic the log filters by (seeded).
    """
    assert n >= 2, f"a quality sample needs 2+ queries, not {n}"
    try:
        log = orjson.loads(query_log.read_bytes())
        entries = [(str(q["q"]), q.get("topic")) for q in log["queries"]]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunError(f"{query_log}: not a readable query log: {exc}") from exc
    rng = random.Random(seed)
    filtered = sorted({(t, f) for t, f in entries if f is not None})
    plain = sorted({t for t, f in entries if f is None})
    topics = sorted({f for _t, f in filtered})
    if not topics or len(plain) < n:
        raise RunError(
            f"{query_log}: {len(plain)} unfiltered queries over {len(topics)} topics, "
            f"too few for a sample of {n}"
        )
    half = n // 2
    rng.shuffle(filtered)
    rng.shuffle(plain)
    with_topic = [SampleQuery(t, f) for t, f in filtered[:half]]
    spare = plain[n - half :]
    while len(with_topic) < half:
        with_topic.append(SampleQuery(spare.pop(), rng.choice(topics)))
    return tuple(with_topic + [SampleQuery(t, None) for t in plain[: n - half]])


def _redis_url(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


@contextlib.contextmanager
def truth_service(
    side: Side,
    servers: ServerSet,
    run_dir: Path,
    database_url: str,
    env: Mapping[str, str],
    code_root: Path | None = None,
    python: Path | None = None,
) -> Iterator[str]:
    """A side's own code as an exact-scan service on its database; stopped by PID after."""
    comp = servers.start_service(
        run_dir,
        workers=1,
        service_env={**env, **TRUTH_ENV},
        database_url=database_url,
        redis_url=_redis_url(servers.valkey.url, TRUTH_REDIS_DB),
        code_root=code_root,
        python=python,
    )
    try:
        ready, reason = service_readiness(comp.url)
        if not ready:
            raise SideFailure(side, f"its exact-scan service at {comp.url} is not ready: {reason}")
        yield comp.url
    finally:
        servers.stop_service(comp)


def _search(client: httpx.Client, url: str, q: SampleQuery) -> list[tuple[int, float]] | None:
    body: dict[str, Any] = {"query": q.text, "k": K}
    if q.topic is not None:
        body["filter"] = {"topic": q.topic}
    try:
        resp = client.post(url + "/v1/search", json=body)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    return [(int(r["id"]), float(r["score"])) for r in resp.json()["results"]]


def score(found: Sequence[tuple[int, float]], truth: Sequence[tuple[int, float]]) -> float:
    """Recall of ``found`` against a non-empty exact top-k (ties at the k-th score count)."""
    assert truth, "recall of an empty truth"
    ids = {i for i, _s in truth}
    kth = min(s for _i, s in truth)
    hits = sum(1 for i, s in found if i in ids or s >= kth - TIE_EPS)
    return min(hits, len(truth)) / len(truth)


TRUTH_ATTEMPTS = 3  # a side whose code fails a share of searches still gets its exact answers


def _truth(client: httpx.Client, url: str, q: SampleQuery) -> list[tuple[int, float]]:
    for _ in range(TRUTH_ATTEMPTS):
        found = _search(client, url, q)
        if found is not None:
            return found
    raise RunError(
        f"its exact-scan service did not answer {q.text!r} (topic {q.topic}) in "
        f"{TRUTH_ATTEMPTS} attempts"
    )


def _answer(
    client: httpx.Client, target: QualityTarget, q: SampleQuery
) -> tuple[list[tuple[int, float]], list[tuple[int, float]] | None]:
    """The exact top-k of ``q`` and the side's answer (None: the side failed to answer)."""
    truth = _truth(client, target.truth_url, q)
    return truth, (_search(client, target.url, q) if truth else [])


def measure_side(
    client: httpx.Client, target: QualityTarget, sample: Sequence[SampleQuery]
) -> SideQuality:
    """One side's answers to ``sample`` against its truth service's (a few in flight)."""
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        answers = list(pool.map(lambda q: _answer(client, target, q), sample))
    recalls: list[tuple[bool, float]] = []
    per_query: list[float | None] = []
    short = failed = 0
    for q, (truth, found) in zip(sample, answers, strict=True):
        if not truth:
            per_query.append(None)
            continue  # nothing to find (a topic with no documents left)
        if found is None:
            failed += 1
            found = []
        recalls.append((q.topic is not None, score(found, truth)))
        per_query.append(round(recalls[-1][1], 6))
        short += len(found) < len(truth)
    if not recalls:
        raise RunError("no sample query has an exact answer: is the corpus empty?")

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs) if xs else 1.0

    return SideQuality(
        queries=len(recalls),
        filtered=sum(1 for f, _r in recalls if f),
        recall_at_k=round(mean([r for _f, r in recalls]), 6),
        recall_filtered=round(mean([r for f, r in recalls if f]), 6),
        recall_unfiltered=round(mean([r for f, r in recalls if not f]), 6),
        short_share=round(short / len(recalls), 6),
        failed=failed,
        recalls=tuple(per_query),
    )


def measure_quality(
    targets: Mapping[Side, QualityTarget], sample: Sequence[SampleQuery], sample_seed: int
) -> QualityRun:
    """Both sides on the same sample, each against its own exact scan."""
    sides = {}
    with httpx.Client(timeout=30.0) as client:
        for side, target in targets.items():
            try:
                sides[side] = measure_side(client, target, sample)
            except RunError as exc:  # that side's own code could not answer its own scan
                raise SideFailure(side, f"the recall check: {exc}") from exc
    return QualityRun(
        k=K, sample_seed=sample_seed, base=sides["base"], candidate=sides["candidate"]
    )
