"""How each side reaches its PostgreSQL: directly, or through a relay of its own that holds
every chunk ``[gate] db_rtt_ms / 2`` each way (:mod:`ci.stack.relay`), as a database on
another host would.

A relay is a process of its own, and like a service process it may carry an offset of its
own (where its memory landed, which core it ran on). :func:`restart_link` replaces it, on the
same port, whenever the side's service is restarted, so that such an offset averages out
over the blocks of windows as the services' does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ci.stack import ServerSet
from ci.stack.process import free_port, stop_pid
from ci.stack.relay import RelayConfig, start_relay


@dataclass(frozen=True, slots=True)
class LinkRelay:
    """A running relay: its process, its settings and its log."""

    pid: int
    config: RelayConfig
    log: Path


@dataclass(frozen=True, slots=True)
class SideLink:
    """A side's way to PostgreSQL: the server URL it connects to (the relay's port when it
    has one), and that relay (None: the server itself)."""

    url: str
    relay: LinkRelay | None = None

    @property
    def relay_pid(self) -> int | None:
        return self.relay.pid if self.relay is not None else None


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def with_port(url: str, port: int) -> str:
    """``url`` at another port of the same host (a relay's in front of the server)."""
    parts = urlsplit(url)
    userinfo, _at, _hostport = parts.netloc.rpartition("@")
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def open_link(servers: ServerSet, admin: str, db_rtt_ms: float, side_dir: Path) -> SideLink:
    """The side's link to the server at ``admin``: a relay of its own of ``db_rtt_ms``
    round trip, or the server itself when ``db_rtt_ms`` is 0. A relay is stopped with the
    rest of ``servers`` (:meth:`~ci.stack.ServerSet.close`)."""
    if db_rtt_ms <= 0:
        return SideLink(admin)
    pg = urlsplit(admin)
    assert pg.hostname, f"PostgreSQL's URL has no host: {admin}"
    assert pg.port, f"PostgreSQL's URL has no port: {admin}"
    config = RelayConfig(free_port(), pg.hostname, pg.port, db_rtt_ms / 2)
    side_dir.mkdir(parents=True, exist_ok=True)
    return _started(servers, with_port(admin, config.listen_port), config, side_dir / "relay.log")


def restart_link(servers: ServerSet, link: SideLink) -> SideLink:
    """``link`` with a new relay process on the same port (the same URL), its old one
    stopped by PID first; ``link`` itself when it has no relay."""
    if link.relay is None:
        return link
    stop_pid(link.relay.pid, "relay")
    if link.relay.pid in servers.relays:
        servers.relays.remove(link.relay.pid)
    return _started(servers, link.url, link.relay.config, link.relay.log)


def _started(servers: ServerSet, url: str, config: RelayConfig, log: Path) -> SideLink:
    relay = start_relay(config, log)
    assert relay.pid is not None, "start_relay returned no pid"
    servers.relays.append(relay.pid)
    return SideLink(url, LinkRelay(relay.pid, config, log))
