"""Settings read from the environment: parsed, checked, and named when bad."""

from __future__ import annotations

import pytest

from service.errors import ConfigError
from service.settings import Settings


def test_gc_thresholds_are_parsed_and_checked() -> None:
    assert Settings.from_env({"SEARCH_GC_THRESHOLDS": "50000, 20,100"}).gc_threshold_values() == (
        50000,
        20,
        100,
    )
    assert Settings.from_env({}).gc_threshold_values() is None
    with pytest.raises(ConfigError, match="SEARCH_GC_THRESHOLDS='700,10'"):
        Settings.from_env({"SEARCH_GC_THRESHOLDS": "700,10"})


def test_stream_query_slots_are_capped_by_the_pool() -> None:
    assert Settings.from_env({}).stream_slots == 10
    assert Settings.from_env({"SEARCH_STREAM_QUERY_SLOTS": "4"}).stream_slots == 4
    small_pool = Settings.from_env({"SEARCH_POOL_MAX_SIZE": "2"})
    assert (small_pool.stream_query_slots, small_pool.stream_slots) == (10, 2)
    with pytest.raises(ConfigError, match="SEARCH_STREAM_QUERY_SLOTS"):
        Settings.from_env({"SEARCH_STREAM_QUERY_SLOTS": "0"})
