"""The steady load of ``perfci chaos``: k6's constant-arrival-rate executor or an httpx loop.

Both offer a constant arrival rate (an open model: a stalled server does not slow the
offered load) and return one :class:`Sample` per request. k6 reports each request's status
but not its headers, and stamps samples in whole seconds; the httpx driver sees headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

from ci.errors import RunError
from ci.measure import k6
from ci.settings import repo_sla

QUERIES = tuple(
    f"{a} {b}"
    for a in ("solar", "bread", "jazz", "galaxy", "river", "python", "chess", "coffee")
    for b in ("energy", "history", "guide", "basics", "science")
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as the client saw it; ``status`` 0 is a transport error."""

    t: float  # unix time the request was sent
    status: int
    latency_s: float
    retry_after: bool | None  # None: the driver cannot see headers (k6)


@dataclass(frozen=True, slots=True)
class Load:
    """What a driver sends: ``rate`` searches per second for ``duration_s`` at ``base_url``."""

    base_url: str
    rate: float
    duration_s: float
    unique_fraction: float  # share of queries made unique (never cached)
    out: Path  # where a driver that writes files (k6) keeps them


Driver = Callable[[Load], list[Sample]]


def _query(i: int, unique_fraction: float) -> str:
    base = QUERIES[i % len(QUERIES)]
    if (i * 7919 % 1000) / 1000 < unique_fraction:
        return f"{base} {i}"
    return base


def httpx_driver(load: Load) -> list[Sample]:
    """An open-model loop: one request every 1/rate s, whatever the previous ones do."""
    base_url, rate, unique_fraction = load.base_url, load.rate, load.unique_fraction

    async def run() -> list[Sample]:
        samples: list[Sample] = []
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=base_url, timeout=10, limits=limits) as client:

            async def one(i: int) -> None:
                t = time.time()
                start = time.perf_counter()
                params = {"q": _query(i, unique_fraction), "k": "10"}
                try:
                    resp = await client.get("/v1/search", params=params)
                    status, retry = resp.status_code, "retry-after" in resp.headers
                except httpx.HTTPError:
                    status, retry = 0, False
                samples.append(Sample(t, status, time.perf_counter() - start, retry))

            tasks = []
            begin = time.perf_counter()
            n = int(rate * load.duration_s)
            for i in range(n):
                delay = begin + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        return sorted(samples, key=lambda s: s.t)

    return asyncio.run(run())


def k6_driver(load: Load) -> list[Sample]:
    """k6's constant-arrival-rate executor (scenarios/constant_rate.js) over vegeta targets."""
    base_url, rate, duration_s, out = load.base_url, load.rate, load.duration_s, load.out
    out.mkdir(parents=True, exist_ok=True)
    targets = out / "targets.jsonl"
    with targets.open("w") as fh:
        for i in range(int(rate * duration_s)):
            query = urlencode({"q": _query(i, load.unique_fraction), "k": 10})
            line = {"method": "GET", "url": f"{base_url}/v1/search?{query}", "header": {}}
            fh.write(json.dumps(line) + "\n")
    env = {
        **repo_sla().k6_env(),  # constant_rate.js's thresholds: perf.toml [sla]
        "BASE_URL": base_url,
        "RATE": str(rate),
        "ATTACK_S": str(int(duration_s)),
        "TARGETS": str(targets),
    }
    inv = k6.invocation("constant_rate.js", env, out, "load")
    k6.run_k6(inv, k6.find_k6())
    samples = []
    durations: list[tuple[float, float]] = []
    statuses: list[int] = []
    for row in k6.csv_rows(inv.raw_path):
        if row.get("metric_name") != "http_req_duration":
            continue
        durations.append((float(row["timestamp"]), float(row["metric_value"]) / 1000))
        statuses.append(int(row.get("status") or 0))
    for (t, latency), status in zip(durations, statuses, strict=True):
        # k6 stamps a sample when the request ends, in whole seconds
        samples.append(Sample(t - latency, status, latency, None))
    return samples


DRIVERS: dict[str, Driver] = {"httpx": httpx_driver, "k6": k6_driver}


@contextlib.contextmanager
def steady_load(driver: Driver, load: Load) -> Iterator[list[Sample]]:
    """Run the driver in a thread for the body's duration; the list fills when it ends."""
    result: list[Sample] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.extend(driver(load))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="chaos-load", daemon=True)
    thread.start()
    try:
        yield result
    finally:
        thread.join(timeout=load.duration_s + 60)
    if thread.is_alive():
        raise RunError("the load generator did not finish")
    if error:
        raise RunError(f"the load generator failed: {error[0]}") from error[0]
