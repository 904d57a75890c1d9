"""The gate's recall check: each side answers a fixed query sample, scored by its own exact
scan; and each side's code answers it on the base's graph, scored by the base's.

After the windows, each side's service answers ``gate.quality_queries`` searches (k = 10,
half with a topic filter) drawn with a fixed seed from the seeded query log. The truth for
each side is its exact top-k, asked once per query of a short-lived *truth service* of that
side: the side's own code, in its own venv, against the side's own database, with
``SEARCH_INDEX_MODE=exact`` (the query/index contract's recall reference: no index, a full
scan) and its caches off. Both are asked over the published HTTP contract; ci/ sends no SQL.

Each side builds its own HNSW graph, and pgvector draws every node's level at random, so
two builds of identical code differ in recall: the sides' own figures carry that build
noise. Two more short-lived services have none: *each side's code on the base's graph*
(:func:`short_lived_service`), that side's code and venv with the base's database, in its
index mode (not exact), its caches off and ``SEARCH_CREATE_INDEX_ON_START=false`` (it never
builds or alters the base's index; its start-up schema statements still run, and the
service's ``IF NOT EXISTS`` finds the base's schema in place). Each sample query goes to
both, one right after the other, and both are scored against the base's exact top-k and
paired by query, the searches either fails left out; identical code on one graph answers
identically, so a query-time change shows exactly. The base's measured service is not
that pair's other half: it may answer part of the sample from its result cache (filled
during the windows, whose writes changed the graph since), and in ten A/A gates identical
code answered about one query in ten otherwise than it, -1.0 to +0.4 pp of recall
(docs/gate-calibration.md). The pair is measured only when both sides embed with the same
model (:func:`vectors_differ`); a service that does not start or answers none of the
sample leaves it unmeasured, not failed (a schema change may break the candidate's code on
the base's schema; the windows judge the candidate on its own).

===========================  ===================================  ==================================
a candidate that ...         against its own exact scan           its code on the base's graph
===========================  ===================================  ==================================
changes a search setting     the same vectors, an exact scan of   the setting's drop exactly: one
(``ef_search``, iterative    them: the drop is the setting's,     graph, no build noise
scans)                       within the noise between two builds
changes the index build      the drop is the build's (and the     not measured: the base's database
(``m``, ``ef_construction``, noise between two builds)            has no index of its name (the
the index type)                                                   service is not ready)
changes the embedding model  its own vectors' exact neighbours:   not measured when the sides'
or the vectors               a model change is not mistaken for   services report other models
                             a recall drop (it changes *what* is  (:func:`vectors_differ`)
                             relevant, which recall@k cannot
                             judge)
changes the ranking code     blind here (its truth moves with     its answers against the base's
for every mode               it); the latency and error metrics   exact ones: a changed ranking, a
                             still judge it                       bug or on purpose, reads as a drop
===========================  ===================================  ==================================

A brute-force scan in numpy over the seeding's cached corpus embeddings would be cheaper
but knows only the base's model, and it would miss the side's own writes. A hit counts as
found when its id is in the exact top-k or its score ties the k-th exact score (equal
distances are ordered arbitrarily). The figures go into ``verdict.json`` and
:mod:`ci.judge.quality` decides.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from ci.errors import RunError, SideFailure
from ci.experiments.gate.sidecode import SideCode
from ci.results.duet import SIDES, Side
from ci.results.quality import QualityRun, SideQuality
from ci.stack import ServerSet, service_readiness

K = 10
IN_FLIGHT = 4  # sample queries answered at once per side (the side's own batching helps;
# the pair on the base's graph asks one at a time: paired_answers)
TIE_EPS = 1e-6  # scores closer than this to the k-th exact score tie with it
# the short-lived services (the truths, the candidate's code on the base's graph): their
# caches off, on a Valkey db no side uses, never building an index
TRUTH_REDIS_DB = 15
SHORT_LIVED_ENV = {
    "SEARCH_CACHE_ENABLED": "false",
    "SEARCH_EMBED_CACHE_ENABLED": "false",
    "SEARCH_CREATE_INDEX_ON_START": "false",
}
TRUTH_ENV = {"SEARCH_INDEX_MODE": "exact", **SHORT_LIVED_ENV}

NOT_ON_BASE = "recall on the base's graph not measured: "  # a progress line's start
Hits = list[tuple[int, float]]  # a search's results: (id, score), best first
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SampleQuery:
    text: str
    topic: str | None


@dataclass(frozen=True, slots=True)
class QualityTarget:
    """One side: its measured service and its truth service."""

    url: str
    truth_url: str


@dataclass(frozen=True, slots=True)
class OnBaseTargets:
    """Each side's code as a short-lived service on the base's database."""

    base_code: str
    candidate_code: str


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
def short_lived_service(
    servers: ServerSet, run_dir: Path, database_url: str, code: SideCode, *, exact: bool
) -> Iterator[tuple[str, str | None]]:
    """``code`` as a one-worker service on ``database_url``, its caches off, never building an
    index, in exact mode (a truth) or its own; stopped by PID after. Yields its URL and why it
    is not ready (None: ready); StackError when it does not start."""
    comp = servers.start_service(
        run_dir,
        workers=1,
        service_env={**code.env, **(TRUTH_ENV if exact else SHORT_LIVED_ENV)},
        database_url=database_url,
        redis_url=_redis_url(servers.valkey.url, TRUTH_REDIS_DB),
        code_root=code.code_root,
        python=code.python,
    )
    try:
        ready, reason = service_readiness(comp.url)
        yield comp.url, None if ready else reason
    finally:
        servers.stop_service(comp)


def model_id(client: httpx.Client, url: str) -> str | None:
    """The embedder's model id a running service reports (``/v1/stats``); None if it does
    not say."""
    try:
        resp = client.get(url + "/v1/stats")
        resp.raise_for_status()
        found = resp.json()["embedder"]["model_id"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return found if isinstance(found, str) else None


def vectors_differ(services: Mapping[Side, str]) -> str | None:
    """Why the sides' stored vectors may differ, given their running services' URLs; None
    when they are the same.

    Both sides' loaders load the run's one set of corpus files, each embedding them with its
    own code's model. A loader records that model's id in its database, and a service
    refuses a corpus of another model than its own, so the id a side's service reports is
    its stored vectors'. The loaders share one embedding cache keyed by corpus hash and
    model id: the same id, the same stored vectors.
    """
    with httpx.Client(timeout=30.0) as client:
        ids = {side: model_id(client, url) for side, url in services.items()}
    unknown = [side for side, found in ids.items() if found is None]
    if unknown:
        noun = "services" if len(unknown) > 1 else "service"
        return f"the {' and '.join(unknown)} {noun} did not report an embedder (/v1/stats)"
    if len(set(ids.values())) > 1:
        return "the sides embed with other models: " + ", ".join(
            f"{side} {found}" for side, found in ids.items()
        )
    return None


def _search(client: httpx.Client, url: str, q: SampleQuery) -> Hits | None:
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


def _truth(client: httpx.Client, url: str, q: SampleQuery) -> Hits:
    for _ in range(TRUTH_ATTEMPTS):
        found = _search(client, url, q)
        if found is not None:
            return found
    raise RunError(
        f"its exact-scan service did not answer {q.text!r} (topic {q.topic}) in "
        f"{TRUTH_ATTEMPTS} attempts"
    )


def exact_answers(
    client: httpx.Client, truth_url: str, sample: Sequence[SampleQuery]
) -> tuple[Hits, ...]:
    """The exact top-k of every sample query, in sample order (a few in flight); RunError
    when the truth service does not answer one."""
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return tuple(pool.map(lambda q: _truth(client, truth_url, q), sample))


def answers(
    client: httpx.Client, url: str, sample: Sequence[SampleQuery]
) -> tuple[Hits | None, ...]:
    """A service's answers to the sample, in sample order (None: it failed that search)."""
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return tuple(pool.map(lambda q: _search(client, url, q), sample))


def side_quality(
    sample: Sequence[SampleQuery],
    truths: Sequence[Hits],
    found: Sequence[Hits | None],
    *,
    leave_out_failed: bool = False,
) -> SideQuality:
    """``found`` scored against ``truths``, query by query. A failed search counts as an
    empty answer (recall 0, short), or with ``leave_out_failed`` is left out of the recalls
    (None) and counted in ``failed`` only. Queries with an empty truth are left out (None).
    """
    recalls: list[tuple[bool, float]] = []
    per_query: list[float | None] = []
    judged = filtered = short = failed = 0
    for q, truth, hits in zip(sample, truths, found, strict=True):
        if not truth:
            per_query.append(None)
            continue  # nothing to find (a topic with no documents left)
        judged += 1
        filtered += q.topic is not None
        if hits is None:
            failed += 1
            if leave_out_failed:
                per_query.append(None)
                continue
            hits = []
        recalls.append((q.topic is not None, score(hits, truth)))
        per_query.append(round(recalls[-1][1], 6))
        short += len(hits) < len(truth)
    if not judged:
        raise RunError("no sample query has an exact answer: is the corpus empty?")

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs) if xs else 1.0

    return SideQuality(
        queries=judged,
        filtered=filtered,
        recall_at_k=round(mean([r for _f, r in recalls]), 6),
        recall_filtered=round(mean([r for f, r in recalls if f]), 6),
        recall_unfiltered=round(mean([r for f, r in recalls if not f]), 6),
        short_share=round(short / max(len(recalls), 1), 6),
        failed=failed,
        recalls=tuple(per_query),
    )


def measure_side(
    client: httpx.Client, url: str, truths: Sequence[Hits], sample: Sequence[SampleQuery]
) -> SideQuality:
    """A side's answers to ``sample`` against its exact top-k (a few in flight)."""
    return side_quality(sample, truths, answers(client, url, sample))


def paired_answers(
    client: httpx.Client, urls: tuple[str, str], sample: Sequence[SampleQuery]
) -> tuple[tuple[Hits | None, ...], tuple[Hits | None, ...]]:
    """Two services' answers to the sample, in sample order: each query asked of both, one
    right after the other, so both search the same graph; which is asked first alternates
    from query to query. One query at a time: a service embeds the queries in flight as one
    batch, and the int8 model's activations are quantized over the whole batch, so a query
    embedded beside others reads a cosine of about 0.993 to itself embedded alone (two
    short-lived services of identical code, four queries in flight each, answered about 40
    of 960 queries differently on one graph). Alone, each is embedded identically."""
    pairs: list[tuple[Hits | None, Hits | None]] = []
    for i, q in enumerate(sample):
        if i % 2:
            second = _search(client, urls[1], q)
            pairs.append((_search(client, urls[0], q), second))
        else:
            pairs.append((_search(client, urls[0], q), _search(client, urls[1], q)))
    return tuple(a for a, _b in pairs), tuple(b for _a, b in pairs)


def measure_on_base(
    client: httpx.Client,
    targets: OnBaseTargets,
    base_truths: Sequence[Hits],
    sample: Sequence[SampleQuery],
    progress: Progress = lambda _m: None,
) -> tuple[SideQuality, SideQuality] | None:
    """Each side's code on the base's graph against the base's exact top-k, the base's
    code's figures first, each leaving out its failed searches; None, said by ``progress``,
    when either answered none."""
    found = paired_answers(client, (targets.base_code, targets.candidate_code), sample)
    for name, side_found in zip(("base's", "candidate's"), found, strict=True):
        judged = (hits for hits, truth in zip(side_found, base_truths, strict=True) if truth)
        if not any(hits is not None for hits in judged):
            progress(
                f"{NOT_ON_BASE}the {name} code on the base's database answered none of the "
                f"{len(sample)} sample queries"
            )
            return None
    base_code, candidate_code = (
        side_quality(sample, base_truths, side_found, leave_out_failed=True) for side_found in found
    )
    return base_code, candidate_code


def _side_truths(
    client: httpx.Client, side: Side, truth_url: str, sample: Sequence[SampleQuery]
) -> tuple[Hits, ...]:
    try:
        truths = exact_answers(client, truth_url, sample)
    except RunError as exc:  # that side's own code could not answer its own scan
        raise SideFailure(side, f"the recall check: {exc}") from exc
    if not any(truths):
        raise SideFailure(
            side, "the recall check: no sample query has an exact answer: is the corpus empty?"
        )
    return truths


def measure_quality(
    targets: Mapping[Side, QualityTarget],
    sample: Sequence[SampleQuery],
    sample_seed: int,
    on_base: OnBaseTargets | None = None,
    progress: Progress = lambda _m: None,
) -> QualityRun:
    """Both sides on the same sample, each against its own exact scan (asked once per
    query); and, with ``on_base`` (each side's code on the base's database, each a
    :func:`short_lived_service`), both codes on the base's graph against the base's exact
    scan."""
    with httpx.Client(timeout=30.0) as client:
        truths = {
            side: _side_truths(client, side, targets[side].truth_url, sample) for side in SIDES
        }
        sides = {
            side: measure_side(client, targets[side].url, truths[side], sample) for side in SIDES
        }
        cross = (
            None
            if on_base is None
            else measure_on_base(client, on_base, truths["base"], sample, progress)
        )
    return QualityRun(
        k=K,
        sample_seed=sample_seed,
        base=sides["base"],
        candidate=sides["candidate"],
        candidate_on_base=None if cross is None else cross[1],
        base_on_base=None if cross is None else cross[0],
    )
