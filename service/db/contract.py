"""The query/index contract: the search SQL, the index DDL and the ANN settings.

Every caller that talks to the documents table about vectors builds its SQL here: the
service's searches, the admin EXPLAIN route, the bulk loader and the index sweep. Nothing
else writes such SQL, so what an analysis measures is what the service runs.

Decision table for the index a query may use (pgvector uses an index only for
``ORDER BY embedding <=> $1 LIMIT k``):

=========  ==========================================  ==============================
mode       per-query settings (SET LOCAL, in a txn)     index
=========  ==========================================  ==============================
hnsw       hnsw.ef_search = max(ef_search, k)           hnsw (m, ef_construction)
ivfflat    ivfflat.probes = probes                      ivfflat (lists)
exact      enable_indexscan = off                       none: the recall reference
=========  ==========================================  ==============================

With a topic filter, the ANN modes turn on pgvector's iterative index scans so that a
selective filter still returns k rows. ``halfvec`` storage indexes and searches the
expression ``embedding::halfvec(384)`` over the same table. A plain search whose settings
equal the connection defaults (:func:`session_settings`) runs as one statement, without
BEGIN/SET LOCAL/COMMIT (measured: docs/profiling.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from service.model import DIM
from service.settings import Settings

HNSW_EF_SEARCH_MAX = 1000  # pgvector's bound on hnsw.ef_search
EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, SETTINGS) "

# The service's own ANN indexes (by name), which a bulk load drops before COPY.
SERVICE_ANN_INDEXES_SQL = (
    "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
    "AND (indexname LIKE 'documents_hnsw_%' OR indexname LIKE 'documents_ivfflat_%')"
)
# Every HNSW/IVFFlat index on the table, whoever built it (the sweep's --drop-existing).
ANN_INDEXES_SQL = (
    "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
    "AND (indexdef ILIKE '%USING hnsw%' OR indexdef ILIKE '%USING ivfflat%')"
)


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """An index mode and its build parameters (the search knobs are :class:`SearchPlan`'s)."""

    mode: str  # hnsw | ivfflat | exact
    vector_type: str = "vector"  # vector | halfvec
    m: int = 16
    ef_construction: int = 64
    lists: int = 100

    def __post_init__(self) -> None:
        assert self.mode in ("hnsw", "ivfflat", "exact"), f"bad index mode {self.mode!r}"
        assert self.vector_type in ("vector", "halfvec"), f"bad type {self.vector_type!r}"

    @classmethod
    def from_settings(cls, s: Settings) -> IndexConfig:
        return cls(s.index_mode, s.vector_type, s.hnsw_m, s.hnsw_ef_construction, s.ivfflat_lists)

    @property
    def expr(self) -> str:
        """The searched (and indexed) expression.

        Each ANN mode searches its own expression so that the planner can only pick that
        mode's index when both exist side by side: HNSW and exact use ``embedding``;
        IVFFlat uses ``l2_normalize(embedding)``, the same vectors for the unit-length
        embeddings every embedder here produces, hence the same distances and rankings.
        """
        col = "l2_normalize(embedding)" if self.mode == "ivfflat" else "embedding"
        if self.vector_type == "halfvec":
            return f"({col}::halfvec({DIM}))"
        if self.mode == "ivfflat":
            col = f"{col}::vector({DIM})"  # an index needs the dimensions a function drops
        return f"({col})"

    @property
    def param(self) -> str:
        """The query vector parameter, cast to the expression's type."""
        return self.cast("$1::vector")

    def cast(self, vector: str) -> str:
        """``vector`` (an SQL expression of type vector) cast to the expression's type."""
        return f"{vector}::halfvec({DIM})" if self.vector_type == "halfvec" else vector

    @property
    def ops(self) -> str:
        return f"{self.vector_type}_cosine_ops"

    @property
    def name(self) -> str | None:
        """The service's name for this index (None for exact: no index)."""
        vt = self.vector_type
        if self.mode == "hnsw":
            return f"documents_hnsw_{vt}_m{self.m}_efc{self.ef_construction}"
        if self.mode == "ivfflat":
            return f"documents_ivfflat_norm_{vt}_l{self.lists}"
        return None

    def ddl(self, name: str | None = None, *, if_not_exists: bool = True) -> str | None:
        """``CREATE INDEX`` for this index, under the service's name unless ``name``."""
        name = name or self.name
        if name is None:
            return None
        if self.mode == "hnsw":
            method, with_ = "hnsw", f"m = {self.m}, ef_construction = {self.ef_construction}"
        else:
            method, with_ = "ivfflat", f"lists = {self.lists}"
        guard = "IF NOT EXISTS " if if_not_exists else ""
        return (
            f"CREATE INDEX {guard}{name} ON documents USING {method} "
            f"({self.expr} {self.ops}) WITH ({with_})"
        )


@lru_cache(maxsize=64)
def search_sql(index: IndexConfig, *, with_topic: bool) -> str:
    """The service's search: ``$1`` query vector, ``$2`` k, ``$3`` topic (if filtered)."""
    expr, param = index.expr, index.param
    where = "WHERE topic = $3 " if with_topic else ""
    score = f"1 - ({expr} <=> {param})"
    return (
        f"SELECT id, title, topic, {score} AS score FROM documents "
        f"{where}ORDER BY {expr} <=> {param} LIMIT $2"
    )


@lru_cache(maxsize=256)
def search_many_sql(index: IndexConfig, limit: int) -> str:
    """Several unfiltered searches in one statement, ``limit`` hits each: ``$1`` the query
    vectors. Each row is ``(query number from 1, id, title, topic, score)``; a query's hits
    come best first, as :func:`search_sql` gives them, since each is that search run as a
    LATERAL subquery of the query list (a nested loop, one index scan per query).

    ``limit`` is written into the statement (the largest k of the batch, each query's hits
    cut to its own k after): a LIMIT taken from the query list is unknown to the planner,
    which then sorts a sequential scan instead of reading the index.
    """
    assert limit >= 1, f"limit must be >= 1, got {limit}"
    expr, param = index.expr, index.cast("q.v")
    return (
        "SELECT q.n, d.id, d.title, d.topic, d.score "
        "FROM unnest($1::vector[]) WITH ORDINALITY AS q(v, n) "
        "CROSS JOIN LATERAL ("
        f"SELECT id, title, topic, 1 - ({expr} <=> {param}) AS score FROM documents "
        f"ORDER BY {expr} <=> {param} LIMIT {int(limit)}) AS d"
    )


@lru_cache(maxsize=64)
def distance_sql(index: IndexConfig) -> str:
    """The search's ORDER BY and LIMIT (same plan), returning the full-precision distance.

    For measuring recall: the score of a halfvec search is itself rounded to float16.
    ``$1`` query vector, ``$2`` k.
    """
    return (
        "SELECT id, embedding <=> $1::vector AS d FROM documents "
        f"ORDER BY {index.expr} <=> {index.param} LIMIT $2"
    )


def knob_setting(mode: str, value: int) -> tuple[str, str]:
    """The ANN search knob of ``mode`` at ``value``: (setting name, value)."""
    if mode == "hnsw":
        return "hnsw.ef_search", str(int(value))
    assert mode == "ivfflat", f"no knob for index mode {mode!r}"
    return "ivfflat.probes", str(int(value))


def set_local(name: str, value: str) -> str:
    """One ``SET LOCAL``; names come from this module and values are validated integers
    or fixed words, never client input."""
    return f"SET LOCAL {name} = {value}"


def session_settings(settings: Settings) -> dict[str, str]:
    """The ANN setting a plain search needs, as a connection default (server_settings).

    Exact mode has none: index scans off for a whole session would slow every lookup by id.
    """
    if settings.index_mode == "hnsw":
        return dict([knob_setting("hnsw", settings.hnsw_ef_search)])
    if settings.index_mode == "ivfflat":
        return dict([knob_setting("ivfflat", settings.ivfflat_probes)])
    return {}


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """How one search runs: its statement and the settings it runs under.

    ``in_transaction`` False: the connection defaults already are ``settings``, and the
    statement runs alone; True: it runs in a read-only transaction after one ``SET
    LOCAL`` per setting.
    """

    index_mode: str
    statement: str
    settings: tuple[tuple[str, str], ...]
    in_transaction: bool

    def set_local_statements(self) -> list[str]:
        return [set_local(name, value) for name, value in self.settings]


def search_plan(settings: Settings, k: int, *, with_topic: bool) -> SearchPlan:
    """The one place that decides a search's statement and settings (search and EXPLAIN)."""
    index = IndexConfig.from_settings(settings)
    mode = settings.index_mode
    values: list[tuple[str, str]]
    if mode == "hnsw":
        ef = max(settings.hnsw_ef_search, min(k, HNSW_EF_SEARCH_MAX))
        values = [knob_setting("hnsw", ef)]
        if with_topic:
            values.append(("hnsw.iterative_scan", "strict_order"))
        same = k <= settings.hnsw_ef_search
    elif mode == "ivfflat":
        values = [knob_setting("ivfflat", settings.ivfflat_probes)]
        if with_topic:
            values.append(("ivfflat.iterative_scan", "relaxed_order"))
        same = True
    else:
        values = [("enable_indexscan", "off"), ("enable_bitmapscan", "off")]
        same = False
    in_transaction = with_topic or settings.debug_db_delay_ms > 0 or not same
    return SearchPlan(mode, search_sql(index, with_topic=with_topic), tuple(values), in_transaction)
