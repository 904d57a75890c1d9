"""Vegeta: JSON targets from the query log, the attack, and parsing its outputs.

Vegeta is not installable from the package registries here; where its binary is missing
the runner replays the same targets at the same rate with ``scenarios/constant_rate.js``.
Formats (vegeta's documentation): JSON targets are one object per line
``{"method","url","header":{name:[values]},"body":base64}``; ``vegeta encode`` JSON lines
carry ``code``, ``timestamp`` (RFC 3339), ``latency`` (ns), ``bytes_in``, ``bytes_out``,
``error``; ``vegeta report -type=json`` durations are in nanoseconds.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ci.errors import RunError

NS_PER_MS = 1_000_000


def find_vegeta() -> Path | None:
    found = shutil.which("vegeta")
    return Path(found) if found else None


def vegeta_version(binary: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(binary), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if line.lower().startswith("version"):
            return line.split(":", 1)[-1].strip()
    return out.strip() or None


# -- targets -------------------------------------------------------------------------------


def json_targets(
    query_log: Mapping[str, Any], base_url: str, count: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """``count`` targets drawn from the query log by weight; one in ten is a POST search."""
    queries = query_log.get("queries")
    if not isinstance(queries, list) or not queries:
        raise RunError("the query log holds no queries: run `perfci seed` first")
    if count < 1:
        raise RunError(f"count={count} is invalid: expected at least 1 target")
    rng = random.Random(seed)
    weights = [float(q["weight"]) for q in queries]
    base = base_url.rstrip("/")
    out: list[dict[str, Any]] = []
    for q in rng.choices(queries, weights=weights, k=count):
        if rng.random() < 0.1:
            body: dict[str, Any] = {"query": q["q"], "k": q["k"]}
            if q.get("topic"):
                body["filter"] = {"topic": q["topic"]}
            raw = json.dumps(body, separators=(",", ":")).encode()
            out.append(
                {
                    "method": "POST",
                    "url": f"{base}/v1/search",
                    "header": {"Content-Type": ["application/json"]},
                    "body": base64.b64encode(raw).decode(),
                }
            )
        else:
            params = {"q": q["q"], "k": q["k"]}
            if q.get("topic"):
                params["topic"] = q["topic"]
            out.append(
                {"method": "GET", "url": f"{base}/v1/search?{urlencode(params)}", "header": {}}
            )
    return out


def write_json_targets(
    query_log_path: Path, base_url: str, out: Path, count: int = 1000, seed: int = 0
) -> Path:
    try:
        log = json.loads(query_log_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{query_log_path}: cannot read the query log: {exc}") from exc
    lines = [json.dumps(t, separators=(",", ":")) for t in json_targets(log, base_url, count, seed)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


# -- the attack ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VegetaFiles:
    results_bin: Path
    encoded: Path
    report: Path


def attack(
    binary: Path, targets: Path, rate: float, duration_s: float, out_dir: Path
) -> VegetaFiles:
    """``vegeta attack | tee results.bin``, then ``encode`` (JSON lines) and ``report``."""
    files = VegetaFiles(
        out_dir / "vegeta.results.bin", out_dir / "vegeta.jsonl", out_dir / "vegeta.report.json"
    )
    steps = [
        (
            [
                str(binary), "attack", "-format=json", f"-targets={targets}",
                f"-rate={round(rate)}/s", f"-duration={duration_s}s",
            ],
            files.results_bin,
        ),
        ([str(binary), "encode", "-to=json", str(files.results_bin)], files.encoded),
        ([str(binary), "report", "-type=json", str(files.results_bin)], files.report),
    ]  # fmt: skip
    for cmd, out in steps:
        with out.open("wb") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise RunError(
                f"`{' '.join(cmd[:2])}` exited {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace')[-500:]}"
            )
    return files


# -- outputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VegetaHit:
    """One request from ``vegeta encode -to=json``."""

    timestamp: float  # unix seconds
    latency_ms: float
    code: int
    error: str


@dataclass(frozen=True, slots=True)
class VegetaReport:
    """``vegeta report -type=json`` (latencies converted from ns to ms)."""

    requests: int
    rate: float
    throughput: float
    success: float
    duration_s: float
    latencies_ms: Mapping[str, float]
    status_codes: Mapping[str, int]
    errors: tuple[str, ...]


def parse_timestamp(text: str) -> float:
    """RFC 3339 with up to nanosecond precision (Python parses at most microseconds)."""
    head, dot, frac = text.partition(".")
    if dot:
        digits = frac.rstrip("Z")
        zone = ""
        for sep in ("+", "-"):
            if sep in digits:
                digits, zone = digits.split(sep, 1)[0], sep + digits.split(sep, 1)[1]
        if frac.endswith("Z"):
            zone = "+00:00"
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    elif text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise RunError(f"vegeta timestamp {text!r} is not RFC 3339") from exc


def parse_encoded(lines: Iterable[str], source: str = "<vegeta encode>") -> tuple[VegetaHit, ...]:
    hits = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            hits.append(
                VegetaHit(
                    timestamp=parse_timestamp(str(row["timestamp"])),
                    latency_ms=int(row["latency"]) / NS_PER_MS,
                    code=int(row["code"]),
                    error=str(row.get("error") or ""),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{source}: line {n}: not a vegeta result: {exc}") from exc
    return tuple(hits)


def parse_report(data: object, source: str = "<vegeta report>") -> VegetaReport:
    if not isinstance(data, dict):
        raise RunError(f"{source}: not a vegeta JSON report")
    try:
        lat = data["latencies"]
        return VegetaReport(
            requests=int(data["requests"]),
            rate=float(data["rate"]),
            throughput=float(data["throughput"]),
            success=float(data["success"]),
            duration_s=int(data["duration"]) / 1e9,
            latencies_ms={k: int(v) / NS_PER_MS for k, v in lat.items()},
            status_codes={str(k): int(v) for k, v in (data.get("status_codes") or {}).items()},
            errors=tuple(str(e) for e in (data.get("errors") or [])),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunError(f"{source}: malformed vegeta report: {exc!r}") from exc
