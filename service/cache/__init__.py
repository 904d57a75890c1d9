"""Query-result and query-embedding cache: an in-process L1 in front of Valkey/Redis.

Modules: :mod:`~service.cache.search_cache` (the facade a worker holds), ``lookup`` (one
request's handle), ``results``, ``embeddings``, ``lru``, ``redis`` (client + breaker),
``generation`` (generation + write log in Redis), ``writelog`` (the pure check), ``lock``.

Correctness rests on the *corpus generation*, a counter in Redis, and the *write log*, a
Redis list of the last ``SEARCH_CACHE_LOG_SIZE`` writes. Every write (``POST``/``DELETE
/v1/documents``, the bulk loader, ``POST /v1/cache/invalidate``), after its transaction
commits and before it answers, runs one Lua script that bumps the generation by one per
record and appends the records, each with its generation: ``insert`` (document id, topic,
float32 embedding), ``delete`` (id), or ``reset`` (bulk load, admin, a lost record;
changes everything). Every search reads the generation from Redis first, and in the same
round trip the log records this process does not hold yet (immutable: kept per process
by generation) and the cached values it may need (its result, unless the L1 holds an
entry, and its query's embedding). A cached result carries the generation ``g0`` it was
computed at (read before computing), its query vector, and its hits; keys hold no
generation (the single-flight and the cross-worker lock still do). At current generation ``G``:

- ``g0 == G``: served.
- ``g0 < G`` (validation on): checked against the records ``g0+1 .. G``. It is still the
  exact top k unless an ``insert`` matching its topic filter lies within its k-th
  distance (+ a float16 margin) or it had fewer than k hits, a ``delete`` hits one of its
  ids, a ``reset`` comes, or a record is missing (trimmed, lost, unreadable). Kept: served
  and, in L1, re-stamped with ``G``; otherwise a miss.
- ``g0 > G``: a miss (an entry from before Valkey restarted with a new random generation).

A search that starts after a write returned reads a generation that includes it, and the
write's record came with it, so it never serves a result that write changed. The check
is exact for exact search; with an ANN index a result is only as exact as the index was.
Stale entries are overwritten by the next fill or age out by TTL (or LRU). A fill's Redis
write goes behind the response (the L1 holds the value at once): it may land after a
later write's bump, and then carries its older ``g0``, which is validated like any other.

Decision table: what may be served, per situation

=============================  ================  ==============  ==========================
situation                      result L1         result Redis    embeddings (L1 / Redis)
=============================  ================  ==============  ==========================
Redis reachable                yes, if of gen G   yes, as L1      yes / yes
                               or validated to G
SEARCH_CACHE_VALIDATE=0        only of gen G      only of gen G   yes / yes
no REDIS_URL                   no: no shared gen  no              yes / no
                               to key it with
generation read fails or the   no (bypass: the    no              yes / no
breaker is open                gen is unknown)
this worker's own write        no, until a retry  no              yes / no
script failed (pending)        (a reset) works
SEARCH_CACHE_ENABLED=0         no                 no              per SEARCH_EMBED_CACHE_*
=============================  ================  ==============  ==========================

Embeddings are a pure function of (model id, normalised text), so they need no
generation and the L1 may serve them even with Redis down. A generation key that is
missing (Valkey restarted empty, or evicted) is re-created from a random 52-bit number,
never from 0, so that an L1 entry from an earlier life of the server cannot match again.
Known window: if another worker's write script fails (Redis unreachable just then) and
Redis comes back without having restarted, *other* workers may serve pre-write results
until that worker's retry succeeds (its next request) or the TTL ends.

Values carry their compute time (delta) and logical expiry for XFetch (Vattani, Chierichetti,
Lowenstein, VLDB 2015): a hit at time ``now`` is recomputed early when
``now - delta * beta * ln(rand()) >= expiry``, so the busier and slower a key, the
earlier one request (per process, through single-flight) refreshes it.
"""
