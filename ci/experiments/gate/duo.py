"""One stack for both sides: per side its own database, loaded by its own loader, its own
Valkey server and its own service, the servers from its own venv.

================  ========================================================================
part              how the sides are kept apart
================  ========================================================================
data layer        each side's database (``gate_<slot>``) starts empty and is built by
                  that side's own loader (its venv, its worktree) from the same corpus
                  files: its schema, its COPY, its index (type and parameters), so a pull
                  request that changes any of them is measured with them; the embedding
                  cache makes MiniLM seconds when warm. The time to ready and the index
                  build time are recorded per side (:class:`~ci.results.duet.SideSetup`)
servers           each side's PostgreSQL (with pgvector) and Valkey are its own venv's,
                  from its lock (:mod:`~ci.experiments.gate.servers`; the harness's
                  where the venv has none): one PostgreSQL shared by both sides when
                  their builds are the same, else one per side
cache             one Valkey server per service (its own process, so its CPU is the
                  side's); PostgreSQL backends are told apart by database (and server)
network           with ``[gate] db_rtt_ms`` each side reaches PostgreSQL through a relay
                  of its own (:mod:`ci.stack.relay`, a process on loopback) that holds
                  every chunk ``db_rtt_ms / 2`` each way: its loader, its service and its
                  recall check connect through it, so every query of both sides pays the
                  same round trip, as to a database on another host
                  (:mod:`~ci.experiments.gate.links`). Each relay's CPU is read apart: it
                  is the network, not the side
service           each side from its own worktree (``cwd`` and ``PYTHONPATH``), with its
                  own venv's interpreter, on its own port, ``service.http.app:create_app``
placement         what else tells the sides apart is dealt by the run's seed
                  (:mod:`~ci.experiments.gate.symmetry`): slot names, ports, the order of
                  the loaders and the starts, CPUs; ``PYTHONHASHSEED`` is the same
================  ========================================================================

Everything is started by this process and stopped by PID when the block ends, however it
ends. :meth:`Duo.restart` replaces both service processes, and their relays, between
blocks of windows (``[gate] restart_every``) and keeps everything else. A side's own
loader or service that fails raises :class:`~ci.errors.SideFailure` naming the side (the
runner judges a candidate's as its failure).
"""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import psutil

from ci.errors import PerfCIError, SideFailure, StackError
from ci.experiments.gate.checkout import SideCheckout
from ci.experiments.gate.links import SideLink, open_link, restart_link, with_database
from ci.experiments.gate.restarts import restart_order, warm_queries, warm_service
from ci.experiments.gate.servers import (
    SideInstall,
    side_install,
    start_postgres_servers,
    start_side_valkey,
)
from ci.experiments.gate.symmetry import HASH_SEED, Deal, deal_sides, draw_ports, pin
from ci.results.duet import SidePlacement, SideSetup
from ci.seed import SeedResult, seed_corpus
from ci.settings import StackSettings
from ci.stack import (
    ServerSet,
    loopback_settings,
    run_sql,
    service_readiness,
    start_service,
)
from ci.stack.process import stop_pid
from ci.stack.state import Component

Progress = Callable[[str], None]
_L = TypeVar("_L", bound=str)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service to run: its label (``base`` or ``candidate``), the
    checkout it runs from, its venv's interpreter, extra ``SEARCH_*`` settings and the
    servers of its venv (:func:`~ci.experiments.gate.servers.side_install`; None: the
    harness's)."""

    label: str
    checkout: SideCheckout
    python: Path
    env: Mapping[str, str] = field(default_factory=dict)
    install: SideInstall | None = None


@dataclass(frozen=True, slots=True)
class SideService:
    label: str
    commit: str
    url: str
    pid: int
    database_url: str
    redis_url: str
    log: str | None
    database: str  # its own database's name (its backends' CPU is attributed by it)
    postgres_url: str  # an admin URL of the server holding that database
    valkey_pid: int | None  # its own Valkey server
    relay_pid: int | None  # its own relay to PostgreSQL (``[gate] db_rtt_ms`` > 0)
    setup: SideSetup
    placement: SidePlacement  # what the run's seed dealt it


@dataclass(frozen=True, slots=True)
class CorpusInfo:
    docs: int
    seed: int
    embedder: str
    corpus_hash: str
    query_log: Path
    seed_s: float  # wall time of the base's loader (embedding from the cache, COPY, index)


@dataclass
class Duo:
    servers: ServerSet
    corpus: CorpusInfo
    services: dict[str, SideService] = field(default_factory=dict)
    start_order: tuple[str, ...] = ()
    links: dict[str, SideLink] = field(default_factory=dict)  # each side's way to PostgreSQL
    launchers: dict[str, Callable[[SideLink], SideService]] = field(
        default_factory=dict, repr=False
    )
    restarts: int = 0

    def exited(self, labels: Sequence[_L]) -> list[_L]:
        """Those of ``labels`` whose service process is gone."""
        return [label for label in labels if not _alive(self.services[label].pid)]

    def restart(self) -> None:
        """Every service stopped by PID, then started again: new processes on the same
        ports, with the same databases, Valkey servers and settings, each answering
        ``WARM_SEARCHES`` searches no cache has seen before this returns
        (:func:`warm_queries`: its model loaded, its pool opened). A side's relay
        to PostgreSQL is replaced with its service, on the same port. Each keeps the
        set-up figures of its first start. The order alternates (:func:`restart_order`)."""
        self.restarts += 1
        order = restart_order(self.start_order, self.restarts)
        for label in order:
            pid = self.services[label].pid
            stop_pid(pid, "service")
            if pid in self.servers.services:
                self.servers.services.remove(pid)
        for label in order:
            self.links[label] = restart_link(self.servers, self.links[label])
        for label in order:
            first = self.services[label].setup
            launched = self.launchers[label](self.links[label])
            self.services[label] = replace(launched, setup=first)
        queries = warm_queries(self.restarts)
        for label in order:  # each loads its model before the windows go on
            warm_service(label, self.services[label].url, queries)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass(frozen=True, slots=True)
class DuoSpec:
    """What the one stack needs to know (from ``perf.toml [gate]`` and the checkouts)."""

    docs: int
    corpus_seed: int
    embedder: str
    workers: int
    db_rtt_ms: float = 0.0  # > 0: each side reaches PostgreSQL through a relay of this round trip


@contextlib.contextmanager
def duo_stack(
    services: Sequence[ServiceSpec],
    spec: DuoSpec,
    run_dir: Path,
    rng: random.Random,
    progress: Progress = lambda _m: None,
    *,
    deal: Deal | None = None,
) -> Iterator[Duo]:
    """The one stack with every service running; stopped by PID when the block ends.

    ``deal`` (default: dealt from ``rng``) gives each service its slot, ports, CPUs and its
    place in the order in which the loaders run and the services start: two identical
    services measured side by side differ by a percent or two, in favour of one of them
    (measured A/A), and anything fixed would hand that to the same side every time. The
    first service's loader's corpus files and query log are the run's.
    """
    assert services, "duo_stack needs at least one service"
    labels = [s.label for s in services]
    deal = deal or deal_sides(labels, rng.randrange(2**31))
    assert sorted(deal.labels) == sorted(labels), f"dealt {deal.labels}, services {labels}"
    by_label = {s.label: s for s in services}
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = loopback_settings(run_dir, workers=spec.workers)
    installs = {s.label: s.install or side_install(None) for s in services}
    side_dirs = {label: run_dir / deal.slot(label) for label in labels}
    servers, admin = start_postgres_servers(
        settings, installs, services[0].label, deal.start_order, side_dirs, progress
    )
    yield from _duo(
        servers, admin, installs, settings, services, by_label, deal, spec, run_dir, progress
    )


def _duo(
    servers: ServerSet,
    admin: Mapping[str, str],
    installs: Mapping[str, SideInstall],
    settings: StackSettings,
    services: Sequence[ServiceSpec],
    by_label: Mapping[str, ServiceSpec],
    deal: Deal,
    spec: DuoSpec,
    run_dir: Path,
    progress: Progress,
) -> Iterator[Duo]:
    """The relays, loaders, Valkey servers and services on ``servers`` (``admin``: an admin
    URL of the server holding each side's database); all stopped after the block (the
    services, then the relays, then PostgreSQL: ``ServerSet.close``)."""
    labels = [s.label for s in services]
    valkeys: list[Component] = []
    try:
        links = {
            label: _own_link(
                servers, admin[label], label, run_dir / deal.slot(label), spec, progress
            )
            for label in deal.start_order
        }
        loaded = {
            label: _own_loader(
                admin[label],
                links[label],
                by_label[label],
                deal.slot(label),
                spec,
                run_dir,
                progress,
            )
            for label in deal.start_order
        }
        first, seed_s = loaded[services[0].label]
        corpus = CorpusInfo(
            spec.docs,
            spec.corpus_seed,
            spec.embedder,
            first.corpus_hash,
            first.query_log_path,
            seed_s,
        )
        drawn = draw_ports(2 * len(labels))  # every port first, then dealt
        duo = Duo(servers, corpus, start_order=deal.start_order, links=links)
        for label in deal.start_order:
            placement = deal.place(label, drawn[::2], drawn[1::2])
            seeded, load_s = loaded[label]
            valkey = start_side_valkey(
                label, installs[label], settings, run_dir / placement.slot, placement.valkey_port
            )
            valkeys.append(valkey)
            assert valkey.pid is not None, "start_valkey returned no pid"
            pin(valkey.pid, placement.cpus)
            launch = functools.partial(
                _start,
                servers,
                admin[label],
                by_label[label],
                placement,
                spec,
                run_dir,
                valkey,
                seeded,
                load_s,
                progress,
            )
            duo.launchers[label] = launch
            duo.services[label] = launch(links[label])
        yield duo
    finally:
        try:
            servers.close(remove_data=True)
        finally:
            for valkey in valkeys:
                stop_pid(valkey.pid, "valkey")


def database_name(slot: str) -> str:
    return f"gate_{slot}"


def _own_link(
    servers: ServerSet, admin: str, label: str, side_dir: Path, spec: DuoSpec, progress: Progress
) -> SideLink:
    link = open_link(servers, admin, spec.db_rtt_ms, side_dir)
    if link.relay is not None:
        progress(
            f"the {label}'s relay to PostgreSQL on port {link.relay.config.listen_port}, "
            f"{link.relay.config.delay_ms:g} ms each way ({spec.db_rtt_ms:g} ms round trip)"
        )
    return link


def _own_loader(
    admin: str,
    link: SideLink,
    svc: ServiceSpec,
    slot: str,
    spec: DuoSpec,
    run_dir: Path,
    progress: Progress,
) -> tuple[SeedResult, float]:
    """An empty database for ``svc``, built by its own loader (through the side's relay,
    if any); the loader's summary and the wall time from the empty database to a loaded,
    indexed one; ``admin``: an admin URL of the server that holds it."""
    name = database_name(slot)
    t0 = time.monotonic()
    run_sql(admin, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    run_sql(with_database(admin, name), "CREATE EXTENSION IF NOT EXISTS vector")
    try:
        seeded = seed_corpus(
            run_dir,
            with_database(link.url, name),
            spec.docs,
            spec.corpus_seed,
            {"SEARCH_EMBEDDER": spec.embedder, **svc.env, "PYTHONHASHSEED": HASH_SEED},
            code_root=svc.checkout.worktree,
            python=svc.python,
        )
    except PerfCIError as exc:
        raise SideFailure(svc.label, f"its own loader failed: {exc}") from exc
    load_s = time.monotonic() - t0
    timings = seeded.loader.get("timings") or {}
    progress(
        f"the {svc.label}'s loader built its database ({spec.docs} documents, "
        f"{seeded.loader.get('model_id')}, index {seeded.loader.get('index')}) in "
        f"{load_s:.1f} s (index {float(timings.get('index_s', 0.0)):.1f} s)"
    )
    return seeded, load_s


def _start(
    servers: ServerSet,
    admin: str,
    svc: ServiceSpec,
    placement: SidePlacement,
    spec: DuoSpec,
    run_dir: Path,
    valkey: Component,
    seeded: SeedResult,
    load_s: float,
    progress: Progress,
    link: SideLink,
) -> SideService:
    side_dir = run_dir / placement.slot
    side_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(
        servers.settings,
        run_dir=side_dir,
        service_port=placement.port,
        workers=spec.workers,
        service_env={
            "SEARCH_EMBEDDER": spec.embedder,
            **svc.env,
            "PYTHONHASHSEED": placement.hash_seed,
        },
    )
    database_url = with_database(link.url, database_name(placement.slot))
    redis_url = valkey.url
    t0 = time.monotonic()
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
    pin(comp.pid, placement.cpus)
    ready, reason = service_readiness(comp.url)
    if not ready:
        raise SideFailure(svc.label, f"its service started but is not ready: {reason}")
    timings = seeded.loader.get("timings") or {}
    setup = SideSetup(
        index=str(seeded.loader.get("index")),
        embed_s=round(float(timings.get("embed_s", 0.0)), 3),
        copy_s=round(float(timings.get("copy_s", 0.0)), 3),
        index_s=round(float(timings.get("index_s", 0.0)), 3),
        ready_s=round(load_s + time.monotonic() - t0, 3),
    )
    return SideService(
        svc.label,
        svc.checkout.commit,
        comp.url,
        comp.pid,
        database_url,
        redis_url,
        comp.log,
        database_name(placement.slot),
        admin,
        valkey.pid,
        link.relay_pid,
        setup,
        placement,
    )
