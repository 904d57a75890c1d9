"""The recall check on a running :class:`~ci.experiments.gate.duo.Duo`: each side's exact-scan
service on its own database, and each side's code on the base's, each a short-lived
service of that side's code (:mod:`~ci.experiments.gate.quality` samples, asks and scores).

A side's exact-scan service that does not start, or is not ready, is that side's failure
(its code runs it, as it runs the side's measured service). Either side's code that does
not start or is not ready on the base's database leaves recall on the base's graph
unmeasured, said by ``progress``: the windows judge the candidate on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path

from ci.errors import SideFailure, StackError
from ci.experiments.gate.duo import Duo
from ci.experiments.gate.quality import (
    NOT_ON_BASE,
    OnBaseTargets,
    QualityTarget,
    measure_quality,
    quality_sample,
    short_lived_service,
    vectors_differ,
)
from ci.experiments.gate.sidecode import SideCode
from ci.results.duet import SIDES, Side
from ci.results.quality import QualityRun
from ci.settings.gate import GateDesign

Progress = Callable[[str], None]


def recall_check(
    design: GateDesign, duo: Duo, code: Mapping[Side, SideCode], run_dir: Path, progress: Progress
) -> QualityRun | None:
    """The recall check: each side against its own exact scan, and the candidate's code on
    the base's graph against the base's, when the sides' vectors are the same."""
    if not design.quality_queries:
        return None
    sample = quality_sample(duo.corpus.query_log, design.quality_queries, design.corpus_seed)
    progress(f"recall check: {len(sample)} queries per side against its own exact scan")
    targets: dict[Side, QualityTarget] = {}
    with contextlib.ExitStack() as stack:
        for side in SIDES:
            svc = duo.services[side]
            try:
                truth, why = stack.enter_context(
                    short_lived_service(
                        duo.servers,
                        run_dir / svc.placement.slot,
                        svc.database_url,
                        code[side],
                        exact=True,
                    )
                )
            except StackError as exc:
                raise SideFailure(side, f"its exact-scan service did not start: {exc}") from exc
            if why is not None:
                raise SideFailure(side, f"its exact-scan service at {truth} is not ready: {why}")
            targets[side] = QualityTarget(svc.url, truth)
        on_base = _on_base(duo, code, run_dir / "on-base", progress, stack)
        return measure_quality(targets, sample, design.corpus_seed, on_base, progress)


def _on_base(
    duo: Duo,
    code: Mapping[Side, SideCode],
    run_dir: Path,
    progress: Progress,
    stack: contextlib.ExitStack,
) -> OnBaseTargets | None:
    """The URLs of each side's ``code`` on the base's database (held open on ``stack``),
    or None, said by ``progress``, when the sides' vectors differ, or either does not start
    or is not ready (the base's database may lack the candidate's index, or its schema: no
    fault of the candidate's)."""
    differ = vectors_differ({side: duo.services[side].url for side in SIDES})
    if differ is not None:
        progress(f"{NOT_ON_BASE}{differ}")
        return None
    progress("recall check: each side's code on the base's graph, against the base's scan")
    base_db = duo.services["base"].database_url
    urls: dict[Side, str] = {}
    for side in SIDES:
        slot = run_dir / duo.services[side].placement.slot  # its neutral name, as its folders
        try:
            url, why = stack.enter_context(
                short_lived_service(duo.servers, slot, base_db, code[side], exact=False)
            )
        except StackError as exc:
            progress(f"{NOT_ON_BASE}the {side}'s code did not start on the base's database: {exc}")
            return None
        if why is not None:
            progress(f"{NOT_ON_BASE}the {side}'s code on the base's database is not ready: {why}")
            return None
        urls[side] = url
    return OnBaseTargets(urls["base"], urls["candidate"])
