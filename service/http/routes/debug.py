"""Debug and diagnosis routes: a deliberate leak, tracemalloc snapshots (admin only).

None of this runs unless asked for. ``SEARCH_DEBUG_LEAK_RESPONSES`` keeps every search
response body in :data:`LEAKED` (the leak the memory-trend test must catch); the
tracemalloc routes answer 404 unless ``SEARCH_ADMIN_TOKEN`` is set, like every admin route.
With several workers each route answers for the worker that serves it (``pid`` says which).
"""

from __future__ import annotations

import os
import tracemalloc

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.errors import BadRequest
from service.http.auth import require_admin

#: Every response body kept by ``SEARCH_DEBUG_LEAK_RESPONSES`` (never cleared: that is the leak).
LEAKED: list[bytes] = []
TRACE_FRAMES = 10
TOP_LIMIT_MAX = 200

_baseline: tracemalloc.Snapshot | None = None


def leak(body: bytes) -> None:
    LEAKED.append(body)


def _json(data: object) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _snapshot() -> tracemalloc.Snapshot:
    # our own bookkeeping would otherwise top the list
    return tracemalloc.take_snapshot().filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        )
    )


async def tracemalloc_start(request: Request) -> Response:
    """Admin: start tracing (if not yet) and take the baseline snapshot."""
    global _baseline
    require_admin(request)
    if not tracemalloc.is_tracing():
        tracemalloc.start(TRACE_FRAMES)
    _baseline = _snapshot()
    current, _peak = tracemalloc.get_traced_memory()
    return _json({"pid": os.getpid(), "tracing": True, "traced_kb": current // 1024})


async def tracemalloc_top(request: Request) -> Response:
    """Admin: top allocation sites (by line); ``compare=1`` ranks growth since the baseline."""
    require_admin(request)
    if not tracemalloc.is_tracing():
        raise BadRequest("tracemalloc", "not tracing: POST /v1/debug/tracemalloc/start first")
    raw_limit = request.query_params.get("limit", "25")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= TOP_LIMIT_MAX:
        raise BadRequest("limit", f"limit={raw_limit!r}: expected an integer 1..{TOP_LIMIT_MAX}")
    limit = int(raw_limit)
    compare = request.query_params.get("compare", "0") in ("1", "true", "yes")
    snapshot = _snapshot()
    sites: list[dict[str, object]] = []
    if compare and _baseline is not None:
        for diff in snapshot.compare_to(_baseline, "lineno")[:limit]:
            frame = diff.traceback[0]
            sites.append(
                {
                    "file": frame.filename,
                    "line": frame.lineno,
                    "size_kb": round(diff.size / 1024, 1),
                    "size_diff_kb": round(diff.size_diff / 1024, 1),
                    "count": diff.count,
                    "count_diff": diff.count_diff,
                }
            )
    else:
        for stat in snapshot.statistics("lineno")[:limit]:
            frame = stat.traceback[0]
            sites.append(
                {
                    "file": frame.filename,
                    "line": frame.lineno,
                    "size_kb": round(stat.size / 1024, 1),
                    "count": stat.count,
                }
            )
    current, peak = tracemalloc.get_traced_memory()
    return _json(
        {
            "pid": os.getpid(),
            "compare": compare and _baseline is not None,
            "traced_kb": current // 1024,
            "peak_kb": peak // 1024,
            "sites": sites,
        }
    )
