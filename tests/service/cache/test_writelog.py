"""Delta validation of cached results: ``WriteLog.check``, the write records
and the cached value they are checked against.

Pure checks with made-up vectors; the Lua scripts against Valkey are in
``test_generation.py``, end-to-end read-your-writes over HTTP in ``test_results.py``.
"""

from __future__ import annotations

import pytest

from service.cache.results import CachedResult
from service.cache.writelog import WriteRecord
from tests.service.cache.records import HITS, cached, insert_record, log_of


def test_an_insert_ranking_inside_the_top_k_drops_the_entry() -> None:
    assert log_of(insert_record(0.7)).check(cached(), 11, 4, None) == "insert"


def test_an_insert_behind_the_kth_distance_keeps_the_entry() -> None:
    log = log_of(insert_record(0.2), insert_record(0.5, doc_id=501))
    assert log.check(cached(), 12, 4, None) == "kept"


def test_an_insert_just_behind_the_kth_distance_still_counts_within_the_margin() -> None:
    assert log_of(insert_record(0.598)).check(cached(), 11, 4, None) == "insert"


def test_any_matching_insert_drops_a_list_shorter_than_k() -> None:
    assert log_of(insert_record(-0.5)).check(cached(), 11, 5, None) == "insert"


def test_topic_filter_ignores_inserts_of_other_topics() -> None:
    log = log_of(insert_record(0.95, topic="t/b"))
    assert log.check(cached(), 11, 4, "t/a") == "kept"
    assert log.check(cached(), 11, 4, None) == "insert"
    assert log_of(insert_record(0.95, topic="t/a")).check(cached(), 11, 4, "t/a") == "insert"


def test_deleting_a_result_drops_the_entry_and_an_unrelated_delete_keeps_it() -> None:
    assert log_of(WriteRecord("delete", 102)).check(cached(), 11, 4, None) == "delete"
    assert log_of(WriteRecord("delete", 999)).check(cached(), 11, 4, None) == "kept"


def test_reset_and_gaps_drop_the_entry() -> None:
    log = log_of(WriteRecord("delete", 999), WriteRecord("reset"))
    assert log.check(cached(), 12, 4, None) == "reset"
    # record 11 missing (trimmed, or never read): unknown counts as changed
    assert log_of(WriteRecord("delete", 999), first=12).check(cached(), 12, 4, None) == "gap"
    # wider than the log can hold
    log = log_of(*[WriteRecord("delete", 999)] * 3, size=2)
    assert len(log) == 2
    assert log.check(cached(), 13, 4, None) == "gap"


def test_an_entry_without_a_vector_survives_deletes_but_no_matching_insert() -> None:
    entry = CachedResult.of(HITS, 0.01, 1e12, 10, b"")
    assert log_of(WriteRecord("delete", 999)).check(entry, 11, 4, None) == "kept"
    assert log_of(insert_record(-0.9)).check(entry, 11, 4, None) == "insert"


def test_a_generation_far_below_the_top_forgets_the_records() -> None:
    log = log_of(WriteRecord("delete", 999), first=10_000)
    log.observe(9_990, [])  # a late answer of a concurrent read: keep
    assert (len(log), log.top) == (1, 10_000)
    log.observe(5, [])  # the generation key started a new life
    assert (len(log), log.top) == (0, 5)


def test_records_round_trip_and_bad_ones_are_refused() -> None:
    rec = insert_record(0.3, topic="x/y z")
    gen, back = WriteRecord.decode_logged(b"4503599627370497 " + rec.encode())
    assert (gen, back) == (4503599627370497, rec)
    with pytest.raises(ValueError, match="kind 'update' is invalid"):
        WriteRecord("update")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ValueError, match="document 3 has a 4-byte vector"):
        WriteRecord("insert", 3, "t", b"\0\0\0\0")


def test_cached_results_round_trip_with_generation_and_vector() -> None:
    entry = cached(gen=4503599627370000)
    assert CachedResult.decode(entry.encode()) == entry
