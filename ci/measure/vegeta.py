"""Vegeta: the binary, the attack, and parsing its outputs.

Where ``go`` is on PATH, ``.ci/run`` and the nox sessions install the pinned vegeta with
``go install`` (the workflows download its release asset and check its checksum); where the
binary is missing the runner replays the same targets at the same rate with
``scenarios/constant_rate.js``.

Targets, and the writes among them: :mod:`ci.measure.vegeta_targets`.

Formats (vegeta's documentation): JSON targets are one object per line
``{"method","url","header":{name:[values]},"body":base64}``; ``vegeta encode`` JSON lines
carry ``code``, ``timestamp`` (RFC 3339), ``latency`` (ns), ``bytes_in``, ``bytes_out``,
``error``, and ``method``, ``url``, ``body`` (base64); ``vegeta report -type=json``
durations are in nanoseconds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ci.errors import RunError

NS_PER_MS = 1_000_000
VEGETA_MODULE = "github.com/tsenart/vegeta"


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
            version = line.split(":", 1)[-1].strip()
            # `go install` builds carry no -ldflags version: read the module's from the binary
            return version or _module_version(binary)
    return out.strip() or None


def _module_version(binary: Path) -> str | None:
    """The vegeta module's version in a Go binary's build info (``go version -m`` shows it)."""
    try:
        data = binary.read_bytes()
    except OSError:
        return None
    found = re.search(
        rb"\nmod\t" + re.escape(VEGETA_MODULE.encode()) + rb"(?:/v\d+)?\tv([0-9][^\s]*)", data
    )
    return found.group(1).decode() if found else "unknown (no version in the binary)"


# -- the attack ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VegetaFiles:
    results: tuple[Path, ...]  # one ``vegeta attack`` output per runner
    encoded: Path  # every runner's results as JSON lines (runner 1's first): the exact merge
    report: Path
    text_report: Path


def attack(
    binary: Path,
    targets: Path,
    rate: float,
    duration_s: float,
    out_dir: Path,
    runners: int = 1,
) -> VegetaFiles:
    """``vegeta attack > results.bin``, then ``encode`` (JSON lines) and ``report`` (JSON,
    and the text a user's ``vegeta attack ... | vegeta report`` prints).

    With ``runners`` N > 1, N attacks run at once, each at rate/N (``-rate=R/Ns``) on every
    N-th target (so each write is sent once); their results are encoded and concatenated
    (every sample kept), and ``vegeta report`` reads the N files together, as a user who
    spread an attack over hosts would run it. A runner that fails or sends nothing is an
    error naming it.
    """
    bins: tuple[Path, ...]
    per_targets: tuple[Path, ...]
    if runners == 1:
        bins, per_targets = (out_dir / "vegeta.results.bin",), (targets,)
    else:
        lines = [ln for ln in targets.read_text().splitlines() if ln.strip()]
        bins = tuple(out_dir / f"vegeta.runner-{i}.results.bin" for i in range(1, runners + 1))
        per_targets = tuple(
            out_dir / f"vegeta.runner-{i}.targets.jsonl" for i in range(1, runners + 1)
        )
        for i, path in enumerate(per_targets):
            path.write_text("".join(f"{ln}\n" for ln in lines[i::runners]))
    files = VegetaFiles(
        bins,
        out_dir / "vegeta.jsonl",
        out_dir / "vegeta.report.json",
        out_dir / "vegeta.report.txt",
    )
    per_runner_rate = f"{round(rate)}/{runners}s" if runners > 1 else f"{round(rate)}/s"
    procs = []
    for bin_path, runner_targets in zip(bins, per_targets, strict=True):
        cmd = [
            str(binary), "attack", "-format=json", f"-targets={runner_targets}",
            f"-rate={per_runner_rate}", f"-duration={duration_s}s",
        ]  # fmt: skip
        with bin_path.open("wb") as fh:
            procs.append(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.PIPE))
    for i, proc in enumerate(procs, start=1):
        _, err = proc.communicate()
        if proc.returncode != 0:
            who = f"vegeta runner {i}" if runners > 1 else "`vegeta attack`"
            raise RunError(f"{who} exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    encoded = []
    for i, bin_path in enumerate(bins, start=1):
        text = _run_step([str(binary), "encode", "-to=json", str(bin_path)])
        if runners > 1 and not text.strip():
            raise RunError(f"vegeta runner {i} ({bin_path.name}) is empty: it sent no request")
        encoded.append(text)
    files.encoded.write_bytes(b"".join(encoded))
    files.report.write_bytes(_run_step([str(binary), "report", "-type=json", *map(str, bins)]))
    files.text_report.write_bytes(_run_step([str(binary), "report", *map(str, bins)]))
    return files


def _run_step(cmd: list[str]) -> bytes:
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RunError(
            f"`{' '.join(cmd[:2])}` exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace')[-500:]}"
        )
    return proc.stdout


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
