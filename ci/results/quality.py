"""The gate's recall check as measured: each side's answers against its own exact top-k,
and each side's code searching the base's database against the base's.

Measured by ``ci.experiments.gate.quality`` after the windows; stored in ``verdict.json``
(:class:`ci.judge.gate_verdict.GateVerdict`) so that ``perfci gate --rejudge`` judges the
same figures again (``ci.judge.quality``).
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

QualitySideName = Literal["base", "candidate"]


class SideQuality(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One side's answers to the sample, scored against that side's exact scan."""

    queries: int  # sample queries judged (those whose exact top-k is not empty)
    filtered: int  # ...of which with a topic filter
    recall_at_k: float  # mean share of the exact top-k found (ties at the k-th score count)
    recall_filtered: float  # the same over the filtered queries
    recall_unfiltered: float  # ...and over the others
    short_share: float  # share of queries answered with fewer hits than the exact top-k has
    failed: int  # queries the side did not answer (counted as recall 0 and short)
    # recall of each sample query, in sample order (None: its exact top-k was empty); the
    # recall check pairs the sides by query (an older verdict has none: threshold only)
    recalls: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        if self.queries < 1 or not 0 <= self.filtered <= self.queries:
            raise ValueError(f"queries = {self.queries}, filtered = {self.filtered}: inconsistent")
        for name in ("recall_at_k", "recall_filtered", "recall_unfiltered", "short_share"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"{name} = {value!r}: must lie in [0, 1]")
        if not 0 <= self.failed <= self.queries:
            raise ValueError(f"failed = {self.failed}: must lie in [0, {self.queries}]")
        for i, r in enumerate(self.recalls):
            if r is not None and not (math.isfinite(r) and 0 <= r <= 1):
                raise ValueError(f"recalls[{i}] = {r!r}: must lie in [0, 1]")


class QualityRun(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Both sides on the same query sample, each against its own exact scan; and the
    candidate's code on the base's graph, when it was measured."""

    k: int
    sample_seed: int
    base: SideQuality
    candidate: SideQuality
    # the candidate's code searching the base's database and HNSW graph, scored against the
    # base's exact scan, paired by query with ``base``; the searches it failed are left out
    # of its recalls (None) and counted in ``failed`` only (an error of the candidate's
    # code on the base's schema is no worse search: the windows judge errors). None when
    # not measured: the sides' vectors differ (another embedder), that service did not
    # start or answered none of the sample, or an older verdict
    candidate_on_base: SideQuality | None = None
    # the base's code answering the same sample at the same moment, as the same kind of
    # short-lived service (caches off) on the same graph: what ``candidate_on_base`` pairs
    # with. None in a verdict written before it existed: ``base`` stands in
    base_on_base: SideQuality | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k = {self.k}: must be >= 1")
        for name in ("candidate_on_base", "base_on_base"):
            on_base = getattr(self, name)
            if on_base is not None and len(on_base.recalls) != len(self.base.recalls):
                raise ValueError(
                    f"{name} has {len(on_base.recalls)} per-query recalls, the base "
                    f"{len(self.base.recalls)}: they must pair by query"
                )
        if self.base_on_base is not None and self.candidate_on_base is None:
            raise ValueError("base_on_base without candidate_on_base: nothing pairs with it")

    def side(self, name: QualitySideName) -> SideQuality:
        return self.base if name == "base" else self.candidate

    def on_base_reference(self) -> SideQuality:
        """What the candidate's code on the base's graph is paired with: the base's code
        measured the same way (``base_on_base``), or in an older verdict the base itself."""
        return self.base if self.base_on_base is None else self.base_on_base
