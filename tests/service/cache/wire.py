"""Round trips to Redis, counted on the wire, and the counters the cache tests read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.asyncio.connection import Connection


class Wire:
    """The round trips of one client's connections (one packed send each: a command, a
    pipeline or a script call), and stalls to inject into the sends that carry a GET, a
    SET or a script call (EVALSHA)."""

    def __init__(self) -> None:
        self.sends = 0
        self.stall_gets_s = 0.0
        self.stall_sets_s = 0.0
        self.stall_scripts_s = 0.0

    def attach(self, client: aioredis.Redis) -> None:
        """Count ``client``'s round trips; call it before the client connects."""
        client.connection_pool.connection_class = self.connection_class()

    def connection_class(self) -> type[Connection]:
        wire = self

        class CountingConnection(Connection):
            async def send_packed_command(
                self, command: bytes | str | Iterable[bytes], check_health: bool = True
            ) -> None:
                wire.sends += 1
                stall = wire.stall_for(_packed(command))
                if stall:
                    await asyncio.sleep(stall)
                await super().send_packed_command(command, check_health)

        return CountingConnection

    def stall_for(self, packed: bytes) -> float:
        if self.stall_gets_s and b"\r\nGET\r\n" in packed:
            return self.stall_gets_s
        if self.stall_sets_s and b"\r\nSET\r\n" in packed:
            return self.stall_sets_s
        if self.stall_scripts_s and b"\r\nEVALSHA\r\n" in packed:
            return self.stall_scripts_s
        return 0.0


def _packed(command: bytes | str | Iterable[bytes]) -> bytes:
    if isinstance(command, str):
        return command.encode()
    if isinstance(command, bytes):
        return command
    return b"".join(command)


def total(counter: Counter, **labels: str) -> float:
    """A counter's value summed over the label values that match ``labels``."""
    return sum(
        s.value
        for m in counter.collect()
        for s in m.samples
        if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items())
    )
