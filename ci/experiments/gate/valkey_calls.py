"""The commands each side's own Valkey server processes in a window: its round trips, counted
by the server (INFO ``total_commands_processed``), not by the code under test.

One connection per server, opened at the first reading and kept open, so that a reading
costs the server exactly one command (the ``INFO`` itself, counted by the next reading) and
the connection's set-up (``CLIENT SETINFO``) falls before the first. A server that does not
answer gives None: the window's count is then unknown, never guessed.
"""

from __future__ import annotations

import redis

READING_COMMANDS = 1  # what one reading adds to the next reading's count: its INFO
TIMEOUT_S = 2.0


class CommandCounter:
    """Readings of ``total_commands_processed``, one open connection per Valkey URL."""

    def __init__(self) -> None:
        self._clients: dict[str, redis.Redis] = {}

    def read(self, url: str) -> int | None:
        """Commands the server at ``url`` has processed since it started (None: no answer)."""
        client = self._clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
            self._clients[url] = client
        try:
            return int(client.info("stats")["total_commands_processed"])
        except (redis.RedisError, OSError, KeyError, TypeError, ValueError):
            return None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def calls_between(before: int | None, after: int | None) -> int | None:
    """The commands between two readings of one server, less the first reading's own (None:
    either reading failed, or the server restarted in between and its count began again)."""
    if before is None or after is None or after < before + READING_COMMANDS:
        return None
    return after - before - READING_COMMANDS
