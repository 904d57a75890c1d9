"""``perfci sweep index``: recall@10 against the exact scan, latency and QPS per ANN setting.

The measuring is the service's: ``python -m service.db.sweep`` builds each index variant
with the service's own DDL and runs the service's own query (ci/ copies no SQL). This
module builds its JSON request, runs it in a subprocess with this interpreter, relays its
progress lines (stderr) and parses the points it prints (stdout). Query vectors are
documents' own embeddings with a little noise, so no embedder is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ci.errors import ConfigError, RunError

SWEEP_MODULE = "service.db.sweep"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXIT_BAD_INPUT = 2


@dataclass(frozen=True, slots=True)
class IndexVariant:
    method: str  # hnsw | ivfflat
    vector_type: str  # vector | halfvec
    m: int = 16
    ef_construction: int = 64
    lists: int = 100


@dataclass(frozen=True, slots=True)
class SweepPoint:
    variant: str
    method: str
    vector_type: str
    knob: str
    value: int
    recall_at_10: float
    p50_ms: float
    p99_ms: float
    qps: dict[int, float]  # concurrency -> queries per second
    build_s: float
    index_mb: float


def sweep_request(
    database_url: str,
    variants: Sequence[IndexVariant],
    knob_values: dict[str, Sequence[int]],
    *,
    queries: int,
    concurrency: Sequence[int],
    seed: int,
    drop_existing: bool,
) -> dict[str, Any]:
    """The JSON request ``python -m service.db.sweep`` reads on stdin."""
    return {
        "database_url": database_url,
        "variants": [asdict(v) for v in variants],
        "knobs": {m: list(knob_values.get(m, ())) for m in ("hnsw", "ivfflat")},
        "queries": queries,
        "concurrency": list(concurrency),
        "seed": seed,
        "drop_existing": drop_existing,
    }


def sweep_index(
    database_url: str,
    variants: Sequence[IndexVariant],
    knob_values: dict[str, Sequence[int]],
    *,
    queries: int = 200,
    concurrency: Sequence[int] = (1, 4, 8),
    seed: int = 1,
    drop_existing: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[SweepPoint]:
    """Run the service's sweep; raise ConfigError on input it refuses, RunError otherwise."""
    request = sweep_request(
        database_url, variants, knob_values, queries=queries, concurrency=concurrency,
        seed=seed, drop_existing=drop_existing,
    )  # fmt: skip
    lines: list[str] = []

    def relay(stream: IO[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))
            progress(line.rstrip("\n"))

    with subprocess.Popen(
        [sys.executable, "-m", SWEEP_MODULE],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:  # the block closes every pipe
        assert proc.stdin is not None, "stdin=PIPE"
        assert proc.stdout is not None, "stdout=PIPE"
        assert proc.stderr is not None, "stderr=PIPE"
        reader = threading.Thread(target=relay, args=(proc.stderr,), daemon=True)
        reader.start()
        try:
            proc.stdin.write(json.dumps(request))
            proc.stdin.close()
            out = proc.stdout.read()
            code = proc.wait()
        except BaseException:
            proc.kill()
            raise
        reader.join(timeout=5)
    if code == EXIT_BAD_INPUT:
        message = lines[-1].removeprefix("error: ") if lines else "the request was refused"
        raise ConfigError(f"sweep index: {message}")
    if code != 0:
        tail = "\n  ".join(lines[-15:])
        raise RunError(f"python -m {SWEEP_MODULE} exited with code {code}:\n  {tail}")
    return parse_points(out)


def parse_points(text: str) -> list[SweepPoint]:
    """The points ``service.db.sweep`` printed (JSON keys of ``qps`` are strings)."""
    try:
        data = json.loads(text)
        return [
            SweepPoint(
                variant=str(p["variant"]),
                method=str(p["method"]),
                vector_type=str(p["vector_type"]),
                knob=str(p["knob"]),
                value=int(p["value"]),
                recall_at_10=float(p["recall_at_10"]),
                p50_ms=float(p["p50_ms"]),
                p99_ms=float(p["p99_ms"]),
                qps={int(c): float(v) for c, v in p["qps"].items()},
                build_s=float(p["build_s"]),
                index_mb=float(p["index_mb"]),
            )
            for p in data
        ]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RunError(f"python -m {SWEEP_MODULE} printed no valid points: {exc}") from exc


def points_as_json(points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    return [
        {
            **{k: getattr(p, k) for k in p.__dataclass_fields__ if k != "qps"},
            "qps": {str(c): v for c, v in p.qps.items()},
        }
        for p in points
    ]


def write_outputs(out: Path, points: Sequence[SweepPoint], concurrency: Sequence[int]) -> None:
    """sweep-index.txt (the table), .json (the points) and .png (recall vs QPS)."""
    from ci.render.sweep import index_plot_png, index_table

    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep-index.txt").write_text(index_table(points, concurrency) + "\n")
    (out / "sweep-index.json").write_text(json.dumps(points_as_json(points), indent=2))
    (out / "sweep-index.png").write_bytes(index_plot_png(points, concurrency[-1]))
