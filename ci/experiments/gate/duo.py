"""One stack for both sides: PostgreSQL and Valkey once, one seeded corpus, two services.

================  ========================================================================
part              how the sides are kept apart
================  ========================================================================
corpus            seeded once into ``gate_template`` with the *base* side's loader (its
                  venv, its worktree), then cloned: ``CREATE DATABASE gate_base TEMPLATE
                  gate_template`` and ``gate_candidate``, so each side's writes stay its own
                  and both start from the same bytes (the embedding cache makes MiniLM
                  seeding seconds when warm)
cache             one Valkey, a logical database per service (``/1``, ``/2``, ... in the
                  order given: base, candidate)
service           each side from its own worktree (``cwd`` and ``PYTHONPATH``), with its
                  own venv's interpreter, on its own port, ``service.http.app:create_app``
================  ========================================================================

Everything is started by this process and stopped by PID when the block ends, however it
ends. A side's own loader or service that fails raises :class:`~ci.errors.SideFailure`
naming the side (the runner judges a candidate's as its failure).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ci.errors import PerfCIError, SideFailure, StackError
from ci.experiments.gate.checkout import SideCheckout
from ci.seed import seed_corpus
from ci.stack import (
    ServerSet,
    free_port,
    loopback_settings,
    run_sql,
    service_readiness,
    start_server_set,
    start_service,
)

TEMPLATE_DB = "gate_template"

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service to run: its label (``base``, ``candidate``; calibration adds more), the
    checkout it runs from, its venv's interpreter and extra ``SEARCH_*`` settings."""

    label: str
    checkout: SideCheckout
    python: Path
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SideService:
    label: str
    commit: str
    url: str
    pid: int
    database_url: str
    redis_url: str
    log: str | None


@dataclass(frozen=True, slots=True)
class CorpusInfo:
    docs: int
    seed: int
    embedder: str
    corpus_hash: str
    query_log: Path
    seed_s: float  # wall time of seeding (embedding from the cache, COPY, index)


@dataclass
class Duo:
    servers: ServerSet
    corpus: CorpusInfo
    services: dict[str, SideService] = field(default_factory=dict)
    start_order: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DuoSpec:
    """What the one stack needs to know (from ``perf.toml [gate]`` and the checkouts)."""

    docs: int
    corpus_seed: int
    embedder: str
    workers: int


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


@contextlib.contextmanager
def duo_stack(
    services: Sequence[ServiceSpec],
    spec: DuoSpec,
    run_dir: Path,
    rng: random.Random,
    progress: Progress = lambda _m: None,
) -> Iterator[Duo]:
    """The one stack with every service running; stopped by PID when the block ends.

    The corpus is seeded with the first service's loader (the base) and copied to each
    service's own database; every other service's loader then loads its copy, which finds
    the same corpus embedded by the same model and loads nothing, unless that revision
    embeds with another model (``SEARCH_MINILM_KERNELS``, say): then it embeds the corpus its
    own way, so that a pull request that changes the model is measured, not refused as a
    corpus of another model. The services start in
    a seeded random order: two identical services measured side by side differ by a percent
    or two in latency, in favour of one of them (measured A/A), and a fixed order would hand
    that to the same side every time.
    """
    assert services, "duo_stack needs at least one service"
    labels = [s.label for s in services]
    assert len(set(labels)) == len(labels), f"service labels repeat: {labels}"
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = loopback_settings(run_dir, workers=spec.workers)
    progress(f"starting PostgreSQL and Valkey (run folder {run_dir})")
    servers = start_server_set(settings)
    try:
        base = services[0]
        corpus = _seed(servers, base.checkout, base.python, spec, run_dir, labels, progress)
        for svc in services[1:]:
            _own_loader(servers, svc, spec, run_dir, progress)
        order = rng.sample(range(len(services)), len(services))
        duo = Duo(servers, corpus, start_order=tuple(labels[i] for i in order))
        for i in order:
            svc = services[i]
            duo.services[svc.label] = _start(servers, svc, spec, run_dir, i + 1, progress)
        yield duo
    finally:
        servers.close(remove_data=True)


def database_name(label: str) -> str:
    return f"gate_{label}"


def _seed(
    servers: ServerSet,
    base: SideCheckout,
    python: Path,
    spec: DuoSpec,
    run_dir: Path,
    labels: Sequence[str],
    progress: Progress,
) -> CorpusInfo:
    admin = servers.pg.url
    run_sql(admin, f"DROP DATABASE IF EXISTS {TEMPLATE_DB}", f"CREATE DATABASE {TEMPLATE_DB}")
    template = with_database(admin, TEMPLATE_DB)
    run_sql(template, "CREATE EXTENSION IF NOT EXISTS vector")
    t0 = time.monotonic()
    seeded = seed_corpus(
        run_dir,
        template,
        spec.docs,
        spec.corpus_seed,
        {"SEARCH_EMBEDDER": spec.embedder},
        progress=progress,
        code_root=base.worktree,
        python=python,
    )
    seed_s = time.monotonic() - t0
    progress(
        f"seeded {spec.docs} documents ({spec.embedder}) with the base loader in {seed_s:.1f} s"
    )
    for label in labels:
        name = database_name(label)
        run_sql(
            admin,
            f"DROP DATABASE IF EXISTS {name}",
            f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}",
        )
    return CorpusInfo(
        spec.docs,
        spec.corpus_seed,
        spec.embedder,
        seeded.corpus_hash,
        seeded.query_log_path,
        seed_s,
    )


def _own_loader(
    servers: ServerSet, svc: ServiceSpec, spec: DuoSpec, run_dir: Path, progress: Progress
) -> None:
    t0 = time.monotonic()
    try:
        seeded = seed_corpus(
            run_dir,
            with_database(servers.pg.url, database_name(svc.label)),
            spec.docs,
            spec.corpus_seed,
            {"SEARCH_EMBEDDER": spec.embedder, **svc.env},
            code_root=svc.checkout.worktree,
            python=svc.python,
        )
    except PerfCIError as exc:
        raise SideFailure(svc.label, f"its own loader failed: {exc}") from exc
    if seeded.loader.get("loaded"):
        progress(
            f"the {svc.label} embeds with {seeded.loader.get('model_id')}: its corpus was "
            f"loaded again by its own loader in {time.monotonic() - t0:.1f} s"
        )


def _start(
    servers: ServerSet,
    svc: ServiceSpec,
    spec: DuoSpec,
    run_dir: Path,
    redis_db: int,
    progress: Progress,
) -> SideService:
    side_dir = run_dir / svc.label
    side_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(
        servers.settings,
        run_dir=side_dir,
        service_port=free_port(),
        workers=spec.workers,
        service_env={"SEARCH_EMBEDDER": spec.embedder, **svc.env},
    )
    database_url = with_database(servers.pg.url, database_name(svc.label))
    redis_url = _redis_db(servers.valkey.url, redis_db)
    progress(
        f"starting the {svc.label} service ({svc.checkout.commit[:12]}) "
        f"on port {settings.service_port}"
    )
    try:
        comp = start_service(
            settings, database_url, redis_url, code_root=svc.checkout.worktree, python=svc.python
        )
    except StackError as exc:
        raise SideFailure(svc.label, f"its service never became ready: {exc}") from exc
    assert comp.pid is not None, "start_service returned no pid"
    servers.services.append(comp.pid)
    ready, reason = service_readiness(comp.url)
    if not ready:
        raise SideFailure(svc.label, f"its service started but is not ready: {reason}")
    return SideService(
        svc.label, svc.checkout.commit, comp.url, comp.pid, database_url, redis_url, comp.log
    )
