"""Each side's Valkey commands, counted by its own server: a reading costs exactly one."""

from __future__ import annotations

import redis

from ci.experiments.gate.valkey_calls import READING_COMMANDS, CommandCounter, calls_between
from tests.harness import OwnValkey


def test_the_count_between_two_readings_is_the_commands_sent_in_between(
    own_valkey: OwnValkey,
) -> None:
    url = own_valkey.url
    counter = CommandCounter()
    other = redis.Redis.from_url(url)
    try:
        other.ping()  # its connection's own set-up happens before the first reading
        first = counter.read(url)
        assert calls_between(first, counter.read(url)) == 0  # nothing but the readings
        before = counter.read(url)
        for i in range(25):
            other.set(f"perfci-test-calls-{i}", i)
        assert calls_between(before, counter.read(url)) == 25
    finally:
        other.close()
        counter.close()


def test_a_server_that_does_not_answer_gives_no_count() -> None:
    counter = CommandCounter()
    assert counter.read("redis://127.0.0.1:9/0") is None  # the discard port: nothing listens
    counter.close()


def test_a_failed_or_restarted_reading_gives_no_count() -> None:
    assert calls_between(None, 10) is None
    assert calls_between(10, None) is None
    assert calls_between(500, 20) is None  # the server restarted: its count began again
    assert calls_between(10, 10 + READING_COMMANDS + 3) == 3
