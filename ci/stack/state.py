"""What a running stack is: its components and ``<run_dir>/stack.json``, the state file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ci.errors import StackError

STATE_FILE = "stack.json"


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    pid: int | None  # None when an external server is used
    url: str
    log: str | None
    external: bool = False


@dataclass(frozen=True, slots=True)
class StackState:
    run_dir: str
    postgres: Component
    redis: Component
    service: Component
    workers: int
    server: str
    service_env: dict[str, str]
    pg_data_dir: str | None
    started_at: float

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def service_url(self) -> str:
        return self.service.url

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        try:
            return cls(
                run_dir=str(data["run_dir"]),
                postgres=Component(**data["postgres"]),
                redis=Component(**data["redis"]),
                service=Component(**data["service"]),
                workers=int(data["workers"]),
                server=str(data["server"]),
                service_env=dict(data.get("service_env", {})),
                pg_data_dir=data.get("pg_data_dir"),
                started_at=float(data["started_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StackError(f"stack state file is malformed: {exc}") from exc


def state_path(run_dir: Path) -> Path:
    return run_dir / STATE_FILE


def load_state(run_dir: Path) -> StackState | None:
    path = state_path(run_dir)
    if not path.exists():
        return None
    try:
        return StackState.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise StackError(f"stack state file {path} is not valid JSON: {exc}") from exc


def write_state(state: StackState) -> None:
    path = state_path(Path(state.run_dir))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2))
    os.replace(tmp, path)
