"""The restart's order and warm-up searches (``ci/experiments/gate/restarts.py``); a real
restart of both services is in ``test_duo.py``."""

from __future__ import annotations

from ci.experiments.gate.restarts import WARM_SEARCHES, restart_order, warm_queries


def test_each_restart_warms_with_searches_no_earlier_restart_sent() -> None:
    first, second = warm_queries(1), warm_queries(2)
    assert len(first) == len(set(first)) == WARM_SEARCHES
    assert not set(first) & set(second)
    assert warm_queries(1) == first  # both sides get the same ones


def test_restarts_alternate_which_side_starts_first() -> None:
    dealt = ("slot-b", "slot-a")
    orders = [restart_order(dealt, n) for n in range(1, 6)]
    assert orders[0] == ("slot-a", "slot-b")  # the first restart reverses the dealt order
    assert orders[1] == dealt
    assert [o[0] for o in orders].count("slot-a") == 3  # five blocks: 3 and 2
    assert orders[::2] == [orders[0]] * 3
