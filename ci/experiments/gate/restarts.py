"""What a restart of both services does besides starting them: the order, and the warm-up.

:meth:`ci.experiments.gate.duo.Duo.restart` stops both services, starts them again in
:func:`restart_order`, and has each answer :func:`warm_queries` (:func:`warm_service`)
before the windows go on, so that no measured window pays for a model loading.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from ci.errors import SideFailure


def restart_order(start_order: Sequence[str], restart: int) -> tuple[str, ...]:
    """The order in which restart number ``restart`` (1-based) starts and warms the
    services: the dealt start order reversed on odd restarts, as dealt on even ones. The
    service started first read more CPU in every block of four A/A runs (+0.4 to +6.2 %,
    docs/gate-calibration.md), so each side starts first in every other block."""
    return tuple(start_order[::-1] if restart % 2 else start_order)


RESTART_QUERY = "how do search engines rank results"
WARM_SEARCHES = 20


def warm_queries(restart: int) -> list[str]:
    """The searches both sides answer after restart number ``restart``: new to every cache
    (Valkey keeps the results of earlier restarts' searches), so each one embeds its query
    and reaches the database, as the windows' misses do."""
    return [f"{RESTART_QUERY} (restart {restart}, search {i})" for i in range(WARM_SEARCHES)]


def warm_service(label: str, url: str, queries: Sequence[str]) -> None:
    """``queries`` one after the other, so that a restarted service has loaded its model
    (it loads on first use) before the windows measure it. Some failed answers are the
    windows' to judge (a candidate that answers 1 % of searches with a 500 is failed on its
    error rate); a service that answers none of them is its side's failure."""
    answered, last = 0, "no search was sent"
    with httpx.Client(base_url=url, timeout=60.0) as client:
        for q in queries:
            try:
                client.get("/v1/search", params={"q": q, "k": 10}).raise_for_status()
                answered += 1
            except httpx.HTTPError as exc:
                last = str(exc)
    if not answered:
        raise SideFailure(
            label, f"its restarted service answered none of {len(queries)} searches: {last}"
        )
