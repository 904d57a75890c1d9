"""The pipeline's settings for the stack and the runner, read once at the entry point.

Values come from (highest first) the command line, ``PERFCI_*`` environment variables,
then the defaults below. Inner modules receive this object or plain values from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ci.errors import ConfigError

SERVERS = ("uvicorn", "granian")


@dataclass(frozen=True, slots=True)
class StackSettings:
    """Where the stack lives and how it starts. Env var beside each field."""

    run_dir: Path = Path(".perfci")  # PERFCI_HOME: state file, logs, data, corpus cache
    host: str = "127.0.0.1"  # loopback only
    pg_port: int = 15432  # PERFCI_PG_PORT
    redis_port: int = 16379  # PERFCI_REDIS_PORT
    service_port: int = 8000  # PERFCI_SERVICE_PORT
    workers: int = 1  # PERFCI_WORKERS: service worker processes
    server: str = "uvicorn"  # PERFCI_SERVER: uvicorn | granian
    database_url: str | None = None  # DATABASE_URL: use this server, start none
    redis_url: str | None = None  # REDIS_URL: use this server, start none
    ready_timeout_s: float = 60.0  # PERFCI_READY_TIMEOUT_S
    service_env: Mapping[str, str] = field(default_factory=dict)  # SEARCH_* passed through

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackSettings:
        env = os.environ if env is None else env
        s = cls(
            run_dir=Path(env.get("PERFCI_HOME") or ".perfci"),
            pg_port=_int(env, "PERFCI_PG_PORT", 15432),
            redis_port=_int(env, "PERFCI_REDIS_PORT", 16379),
            service_port=_int(env, "PERFCI_SERVICE_PORT", 8000),
            workers=_int(env, "PERFCI_WORKERS", 1),
            server=env.get("PERFCI_SERVER") or "uvicorn",
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            ready_timeout_s=float(_int(env, "PERFCI_READY_TIMEOUT_S", 60)),
            service_env={k: v for k, v in env.items() if k.startswith("SEARCH_")},
        )
        s.validate()
        return s

    def with_overrides(self, **changes: object) -> StackSettings:
        clean = {k: v for k, v in changes.items() if v is not None}
        s = replace(self, **clean)  # type: ignore[arg-type]  # keys are field names by construction
        s.validate()
        return s

    def validate(self) -> None:
        for name, port in (
            ("pg_port", self.pg_port),
            ("redis_port", self.redis_port),
            ("service_port", self.service_port),
        ):
            if not 1 <= port <= 65535:
                raise ConfigError(f"{name}={port} is invalid: expected a port 1-65535")
        if len({self.pg_port, self.redis_port, self.service_port}) != 3:
            raise ConfigError(
                f"ports must differ: postgres {self.pg_port}, redis {self.redis_port}, "
                f"service {self.service_port}"
            )
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"workers={self.workers} is invalid: expected 1-64")
        if self.server not in SERVERS:
            raise ConfigError(f"server={self.server!r} is invalid: expected one of {SERVERS}")
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigError(f"host={self.host!r} is invalid: the stack binds loopback only")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is invalid: expected an integer") from exc
