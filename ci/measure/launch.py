"""The launchers: N k6 runners on this machine (or behind a command prefix such as
``ip netns exec NS``), started paused, resumed together over k6's REST API, merged exactly;
or N k6-operator pods (:mod:`ci.measure.operator`). Preflight and ``--dry-run`` too.

Each runner runs :func:`ci.measure.segments.runner_argv`. perfci waits until every runner's
REST API answers, then resumes them one after another with ``PATCH /v1/status``; the start
skew is the time from the first resume sent to the last one answered. A runner's exit code 99
(a threshold failed) cannot happen (``--no-thresholds``) and would mean nothing: thresholds are
judged once on the merged samples. Any other non-zero exit is an error naming the runner.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ci.errors import RunError
from ci.measure import merge, operator, segments
from ci.measure.k6 import (
    EXIT_THRESHOLDS_FAILED,
    K6Invocation,
    K6Summary,
    RawSamples,
    planned_duration,
)
from ci.stack import free_port

API_READY_S = 60.0  # a runner's REST API must answer within this after its start
RESUME = {"data": {"type": "status", "id": "default", "attributes": {"paused": False}}}
MAX_START_SKEW_S = 1.0


@dataclass(frozen=True, slots=True)
class RunnerHost:
    """Where one runner runs: a command prefix (empty: this machine) and the address its REST
    API binds to and is reached at."""

    prefix: tuple[str, ...] = ()
    api_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Launched:
    files: tuple[Path, ...]  # runner i's CSV is files[i-1]
    start_skew_s: float
    exit_codes: tuple[int, ...]


def runner_file(out_dir: Path, name: str, i: int) -> Path:
    return out_dir / f"{name}.runner-{i}.raw.csv.gz"


def launch(
    inv: K6Invocation,
    binary: Path,
    runners: int,
    hosts: Sequence[RunnerHost] = (),
    tick: Callable[[float], None] = lambda _elapsed: None,
    tick_every_s: float = 2.0,
) -> Launched:
    """Run ``runners`` k6 processes of ``inv``'s script, paused, then resume them together."""
    hosts = tuple(hosts) or (RunnerHost(),) * runners
    if len(hosts) != runners:
        raise RunError(f"{len(hosts)} runner hosts given for {runners} runners")
    name = inv.raw_path.name.removesuffix(".raw.csv.gz")
    out_dir = inv.raw_path.parent
    spec = segments.RunnerSpec(str(inv.script), runners, f"{name}-{out_dir.name}")
    env = {**os.environ, **inv.env, **segments.runner_env()}
    procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    files = tuple(runner_file(out_dir, name, i) for i in range(1, runners + 1))
    try:
        for i, host in enumerate(hosts, start=1):
            api = f"{host.api_host}:{free_port()}"
            argv = segments.runner_argv(spec, i, address=api, raw_path=str(files[i - 1]))
            log_path = out_dir / f"{name}.runner-{i}.k6.log"
            with log_path.open("w") as log:
                try:
                    proc = subprocess.Popen(
                        [*host.prefix, str(binary), *argv[1:]],
                        env=env, stdout=log, stderr=subprocess.STDOUT,
                    )  # fmt: skip
                except OSError as exc:
                    raise RunError(f"runner {i}: cannot start k6: {exc}") from exc
            procs.append((proc, api, log_path))
        for i, (proc, api, log_path) in enumerate(procs, start=1):
            _wait_ready(i, proc, api, log_path)
        skew = _resume(procs)
        codes = _wait_all(procs, tick, tick_every_s)
    except BaseException:
        for proc, _, _ in procs:
            _stop(proc)
        raise
    return Launched(files, skew, codes)


def _wait_ready(i: int, proc: subprocess.Popen[bytes], api: str, log_path: Path) -> None:
    deadline = time.monotonic() + API_READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError(
                f"runner {i} exited {proc.returncode} before it started: {_tail(log_path)}"
            )
        try:
            httpx.get(f"http://{api}/v1/status", timeout=1.0).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RunError(f"runner {i}: its REST API {api} did not answer in {API_READY_S:.0f} s")


def _resume(procs: Sequence[tuple[subprocess.Popen[bytes], str, Path]]) -> float:
    first = time.monotonic()
    with httpx.Client(timeout=5.0) as client:
        for i, (_, api, _) in enumerate(procs, start=1):
            try:
                client.patch(f"http://{api}/v1/status", json=RESUME).raise_for_status()
            except httpx.HTTPError as exc:
                raise RunError(f"runner {i}: resuming it at {api} failed: {exc}") from exc
    return time.monotonic() - first


def _wait_all(
    procs: Sequence[tuple[subprocess.Popen[bytes], str, Path]],
    tick: Callable[[float], None],
    tick_every_s: float,
) -> tuple[int, ...]:
    """Every runner's exit code; the first runner to crash is an error at once (the caller
    stops the others)."""
    start = time.monotonic()
    next_tick = start + tick_every_s
    while True:
        codes = [proc.poll() for proc, _, _ in procs]
        for i, ((_, _, log_path), code) in enumerate(zip(procs, codes, strict=True), start=1):
            if code is not None and code not in (0, EXIT_THRESHOLDS_FAILED):
                raise RunError(
                    f"runner {i} crashed (exit {code}); its output ends:\n{_tail(log_path)}"
                )
        if all(code is not None for code in codes):
            return tuple(int(code) for code in codes if code is not None)
        time.sleep(min(tick_every_s, 0.1))
        if time.monotonic() >= next_tick:
            tick(time.monotonic() - start)
            next_tick += tick_every_s


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-1500:]
    except OSError:
        return "(no output)"


def merge_runs(
    files: Sequence[Path], options: Mapping[str, Any], start_skew_s: float | None
) -> tuple[K6Summary, RawSamples]:
    """Merge the runners' files, check the invariants, judge the thresholds once."""
    thresholds = options.get("thresholds") or {}
    merged = merge.merge_files(files, thresholds)
    merge.check_invariants(merged, options, start_skew_s=start_skew_s, max_skew_s=MAX_START_SKEW_S)
    return merge.summary(merged, thresholds)


def preflight_scenarios(
    binary: Path,
    scripts: Mapping[str, Path],
    env: Mapping[str, str],
    runners: int,
    progress: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Each scenario's options (``k6 inspect``) checked by :func:`segments.preflight`;
    its warnings go to ``progress``, a refusal is a RunError before anything runs."""
    options = {}
    for name, script in scripts.items():
        options[name] = segments.inspect_options(binary, script, env)
        for warning in segments.preflight(options[name], runners, script.name).warnings:
            progress(f"preflight: {warning}")
    return options


def run_split(
    inv: K6Invocation,
    binary: Path,
    runners: int,
    options: Mapping[str, Any],
    hosts: Sequence[RunnerHost],
    namespace: str | None,
    tick: Callable[[float], None],
    progress: Callable[[str], None],
) -> tuple[K6Summary, RawSamples]:
    """The scenario on N runners (local processes, or k6-operator pods in ``namespace``),
    merged exactly."""
    if namespace is None:
        launched = launch(inv, binary, runners, hosts, tick)
        merged = merge_runs(launched.files, options, launched.start_skew_s)
        progress(
            f"  {runners} runners resumed within {launched.start_skew_s * 1000:.1f} ms; "
            "their samples merged exactly, thresholds judged once"
        )
        return merged
    run = _operator_run(inv, runners, namespace)
    manifests = operator.render(run, operator.archive(binary, inv.script, inv.env, _archive(inv)))
    planned = planned_duration(inv, binary) or 3600.0
    files = operator.apply_and_collect(run, manifests, inv.raw_path.parent, planned + 600)
    # k6-operator's starter pod resumes the runners: their skew is not measured here
    return merge_runs(files, options, None)


def _archive(inv: K6Invocation) -> Path:
    return inv.raw_path.parent / f"{inv.script.stem}.archive.tar"


def _operator_run(inv: K6Invocation, runners: int, namespace: str) -> operator.OperatorRun:
    name = inv.raw_path.name.removesuffix(".raw.csv.gz").replace("_", "-")
    return operator.OperatorRun(f"perfci-{name}", namespace, runners, dict(inv.env))


def dry_run_text(
    binary: Path, invocations: Sequence[K6Invocation], runners: int, namespace: str | None
) -> str:
    """Each runner's argv and environment, or (``namespace``) the k6-operator manifests."""
    out: list[str] = []
    for inv in invocations:
        if namespace is not None:
            tar = operator.archive(binary, inv.script, inv.env, _archive(inv))
            manifests = operator.render(_operator_run(inv, runners, namespace), tar)
            out.append(operator.to_yaml_stream(manifests))
            continue
        name = inv.raw_path.name.removesuffix(".raw.csv.gz")
        spec = segments.RunnerSpec(str(inv.script), runners, f"{name}-dry-run")
        out.append(f"# {name}: {runners} runner(s), environment:")
        out += [f"#   {k}={v}" for k, v in sorted({**inv.env, **segments.runner_env()}.items())]
        for i in range(1, runners + 1):
            argv = segments.runner_argv(
                spec, i, address=f"127.0.0.1:{segments.API_PORT + i - 1}",
                raw_path=str(runner_file(Path("."), name, i)),
            )  # fmt: skip
            out.append(segments.render_argv(argv))
    return "\n".join(out)
