"""The ``perf-pr`` artifact as ``perf-comment`` receives it: untrusted files, checked.

The artifact is the gate's report folder (:class:`~ci.judge.gate_folder.GateFolder`),
``pr.json`` included. It was produced on a runner that ran the pull request's code, so
nothing in it is taken on trust: every field is validated, and ``pr.json`` must agree with
the trusted ``workflow_run`` event (same run, same attempt, same head commit) before its
pull-request number is used at all.

A verdict is refused when it measured other commits than ``pr.json`` names, when its rule
is not this repository's ``perf.toml [gate]`` rule, when its windows are not what a real
gate run writes (:func:`check_windows`), or when they do not judge to its judgement under
that rule (:func:`check_verdict`): the decision is taken again by trusted code
(:func:`ci.judge.gate_decision.rejudge`), never read from the verdict. The recall check's
and the micro-benchmarks' figures in the verdict are judged again with the windows, so a
verdict whose figures fail either check under a passing judgement is refused; one that
leaves them out is judged without them.

:func:`check_windows` checks what a forgery would have to get right and an honest run
always does: the windows' design is the verdict's (rate, window, warm-up, order seed); the
indices, warm-up flags and ABBA blocks follow each other (two windows per side in slot
``a`` per block); every window ran at least its length and started after the one before
ended; no side answered more searches than ``rate`` x ``window_s`` allow, both sides the
same count (every duet iteration searches both), and no more writes than the write
fraction explains. Where the artifact ships a window's k6 summary export
(``windows/window-NNN.summary.json``), the window's search count, latency sample count and
p50/p90 must be the ones k6 reported for that side's slot (:func:`check_summaries`). An
artifact that passes them can still hold invented figures; what a
malicious pull request can do is in the README ("fork-safe").
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from ci.errors import ComparisonError, PostError, ResultsError
from ci.judge.gate_decision import rejudge
from ci.judge.gate_folder import GateFolder, PrRecord
from ci.judge.gate_verdict import GateJudgement, GateVerdict, load_verdict
from ci.post.event import WorkflowRunEvent
from ci.results.duet import SIDES, DuetRun, Side, load_duet, restarted_before
from ci.settings.gate import GateRule

MAX_PR_FILE = 64 * 1024
MAX_VERDICT_FILE = 16 * 1024 * 1024
MAX_WINDOWS_FILE = 64 * 1024 * 1024
MAX_SUMMARY_FILE = 4 * 1024 * 1024


class ArtifactError(PostError):
    """The artifact is missing, malformed, or belongs to another run or commit."""


def _read_small(path: Path, limit: int) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise ArtifactError(f"{path.name} is missing from the artifact (or not a plain file)")
    size = path.stat().st_size
    if size > limit:
        raise ArtifactError(f"{path.name} has {size} bytes; at most {limit} are read")
    return path.read_bytes()


def load_pr_record(folder: GateFolder) -> PrRecord:
    """``pr.json``, validated (not yet checked against the event)."""
    if not folder.root.is_dir():
        raise ArtifactError(f"no perf-pr artifact at {folder.root} (the run uploaded none)")
    raw = _read_small(folder.pr, MAX_PR_FILE)
    try:
        return msgspec.json.decode(raw, type=PrRecord)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ArtifactError(f"{folder.pr.name} is invalid: {exc}") from exc


def check_against_event(record: PrRecord, event: WorkflowRunEvent) -> PrRecord:
    """Refuse an artifact of another run, attempt or commit than the one that completed."""
    if (record.run_id, record.run_attempt) != (event.run_id, event.run_attempt):
        raise ArtifactError(
            f"pr.json is from run {record.run_id} attempt {record.run_attempt}, not run "
            f"{event.run_id} attempt {event.run_attempt} (a stale artifact?)"
        )
    if record.head_sha != event.head_sha:
        raise ArtifactError(
            f"pr.json names head {record.head_sha[:12]}, but the run tested {event.head_sha[:12]}"
        )
    if event.pull_requests and record.pr not in event.pull_requests:
        raise ArtifactError(
            f"pr.json names pull request #{record.pr}, but the run belongs to "
            + ", ".join(f"#{n}" for n in event.pull_requests)
        )
    return record


def _quiet(folder: GateFolder, exc: Exception) -> str:
    return str(exc).replace(str(folder.root) + "/", "")


def load_gate_verdict(folder: GateFolder, record: PrRecord) -> GateVerdict:
    """``verdict.json``, validated, of exactly the commits ``record`` names."""
    _read_small(folder.verdict, MAX_VERDICT_FILE)  # present, a plain file, not huge
    try:
        verdict = load_verdict(folder.verdict)
    except ResultsError as exc:
        raise ArtifactError(_quiet(folder, exc)) from exc
    measured = (verdict.base.sha, verdict.candidate.sha)
    if measured != (record.base_sha, record.merge_sha):
        raise ArtifactError(
            f"the verdict measured {verdict.base.sha[:12]} -> {verdict.candidate.sha[:12]}, "
            f"not the merge commit {str(record.merge_sha)[:12]} and its first parent "
            f"{str(record.base_sha)[:12]}"
        )
    return verdict


#: Slack of the count checks: k6's arrival-rate executor starts at most rate x duration
#: iterations; the writes are a binomial draw, bounded generously.
COUNT_SLACK = 1.02
CLOCK_SLACK_S = 2.0  # started_at has whole seconds
MAX_OVERRUN_S = 120.0  # a window longer than window_s by more is not a k6 window


def _started(run: DuetRun, i: int) -> datetime:
    text = run.windows[i].started_at
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ArtifactError(f"windows.json: window {i} started_at {text!r} is no time") from exc


def check_windows(run: DuetRun, verdict: GateVerdict) -> None:
    """Refuse windows that no gate run under the verdict's design writes (module docstring)."""
    d, g = run.design, verdict.design
    ours = (d.rate, d.window_s, d.warmup_windows, d.unique_fraction, d.write_fraction)
    theirs = (g.rate, g.window_s, g.warmup_windows, g.unique_fraction, g.write_fraction)
    extras = (d.stream_fraction, d.burst_vus, d.burst_iterations, d.burst_gap_s, d.restart_every)
    same = ours == theirs and extras == (
        g.stream_fraction,
        g.burst_vus,
        g.burst_iterations,
        g.burst_gap_s,
        g.restart_every,
    )
    if not same or (d.order_seed, d.workers) != (verdict.order_seed, g.workers):
        raise ArtifactError(
            "windows.json was measured under another design than the verdict's (rate, "
            "window, warm-up, fractions, burst, restarts, workers or order seed differ)"
        )
    iterations = d.rate * d.window_s * COUNT_SLACK + 1
    streams = _draws(d.stream_fraction, iterations)
    bursts = d.burst_vus * d.burst_iterations  # each burst VU sends exactly this many
    # besides its searches a side gets an ingest and a delete per write, its streams and
    # its burst's searches
    others = 2 * _draws(d.write_fraction, iterations) + streams + bursts
    for i, w in enumerate(run.windows):
        where = f"windows.json: window {i}"
        if (w.warmup, w.block) != (i < d.warmup_windows, i // 4):
            raise ArtifactError(f"{where}: warm-up flag or ABBA block out of sequence")
        # a window marked restarted leaves its RSS pair out: only a restart's first may be
        # (one unmarked, as an older harness wrote it, only keeps a noisier pair in)
        if w.restarted and not restarted_before(i, d.warmup_windows, d.restart_every):
            raise ArtifactError(
                f"{where} is marked restarted, but with restart_every = {d.restart_every} "
                "no restart comes before it"
            )
        longest = d.window_s + 2 * d.burst_gap_s + MAX_OVERRUN_S  # sequential bursts after it
        if not d.window_s * 0.99 <= w.duration_s <= longest:
            raise ArtifactError(f"{where} lasted {w.duration_s} s, not a {d.window_s} s window")
        if i and _started(run, i) < _started(run, i - 1) + _seconds(
            run.windows[i - 1].duration_s - CLOCK_SLACK_S
        ):
            raise ArtifactError(f"{where} started before window {i - 1} ended")
        counts = {s: w.side(s).searches for s in SIDES}
        if counts["base"] != counts["candidate"]:
            raise ArtifactError(
                f"{where}: {counts['base']} searches to the base but {counts['candidate']} "
                "to the candidate (every duet iteration searches both)"
            )
        for side in SIDES:
            figures = w.side(side)
            if figures.searches > iterations:
                raise ArtifactError(
                    f"{where}: {figures.searches} searches to the {side}, more than "
                    f"{d.rate:g}/s x {d.window_s:g} s allow"
                )
            burst = figures.burst_ms.samples if figures.burst_ms else 0
            stream = figures.stream_ms.samples if figures.stream_ms else 0
            if burst > bursts or stream > streams:
                raise ArtifactError(
                    f"{where}: {burst} burst searches and {stream} streams to the {side}, "
                    f"more than {d.burst_vus} x {d.burst_iterations} and a stream fraction "
                    f"of {d.stream_fraction:g} allow"
                )
            if figures.requests - figures.searches > others:
                raise ArtifactError(
                    f"{where}: {figures.requests - figures.searches} requests to the {side} "
                    f"besides its searches, more than its writes (a fraction of "
                    f"{d.write_fraction:g}), streams and burst explain"
                )
    complete = len(run.windows) // 4 * 4
    for start in range(0, complete, 4):
        slots = [w.slot_a for w in run.windows[start : start + 4]]
        if slots.count("base") != 2:
            raise ArtifactError(
                f"windows.json: block {start // 4} drives slot a as {', '.join(slots)}, "
                "not two windows per side"
            )


def _draws(fraction: float, iterations: float) -> float:
    """The most iterations a binomial share ``fraction`` of ``iterations`` plausibly gives."""
    return fraction * iterations * 1.5 + 10


def _summary_figures(metrics: dict[str, object], slot: str) -> dict[str, float]:
    """The figures a duet summary export gives for ``slot`` (those it holds)."""
    out: dict[str, float] = {}
    searches = metrics.get(f"search_duet_{slot}_searches")
    if isinstance(searches, dict) and isinstance(searches.get("count"), int | float):
        out["searches"] = float(searches["count"])
    latency = metrics.get(f"search_duet_{slot}_latency")
    if isinstance(latency, dict):
        for key, name in (("count", "samples"), ("med", "p50"), ("p(90)", "p90")):
            if isinstance(latency.get(key), int | float):
                out[name] = float(latency[key])
    return out


def check_summaries(folder: GateFolder, run: DuetRun) -> None:
    """Refuse windows whose figures are not what their shipped k6 summary exports say."""
    for w in run.windows:
        path = folder.window_logs / f"window-{w.index:03d}.summary.json"
        if not path.exists():
            continue
        try:
            data = json.loads(_read_small(path, MAX_SUMMARY_FILE))
        except ValueError as exc:
            raise ArtifactError(f"{path.name}: not JSON: {exc}") from exc
        metrics = data.get("metrics") if isinstance(data, dict) else None
        if not isinstance(metrics, dict):
            raise ArtifactError(f"{path.name}: not a k6 summary export")
        slot_b: Side = "candidate" if w.slot_a == "base" else "base"
        for slot, side in (("a", w.slot_a), ("b", slot_b)):
            figures = w.side(side)
            ours = {
                "searches": float(figures.searches),
                "samples": float(figures.latency_ms.samples),
                "p50": figures.latency_ms.p50,
                "p90": figures.latency_ms.p90,
            }
            for name, value in _summary_figures(metrics, slot).items():
                if not math.isclose(ours[name], value, rel_tol=1e-9, abs_tol=1e-9):
                    raise ArtifactError(
                        f"windows.json: window {w.index} gives the {side} {name} = "
                        f"{ours[name]:g}, its k6 summary {value:g}"
                    )


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=math.floor(max(value, 0.0)))


def judge_folder(folder: GateFolder, verdict: GateVerdict) -> GateJudgement:
    """The folder's ``windows.json``, checked (:func:`check_windows`) and judged again
    under the verdict's own rule."""
    _read_small(folder.windows, MAX_WINDOWS_FILE)
    try:
        run = load_duet(folder.windows)
        check_windows(run, verdict)
        check_summaries(folder, run)
        return rejudge(verdict, run)
    except (ResultsError, ComparisonError) as exc:
        raise ArtifactError(_quiet(folder, exc)) from exc


def check_verdict(folder: GateFolder, verdict: GateVerdict, rule: GateRule) -> GateJudgement:
    """Refuse a verdict not judged by ``rule`` (this repository's) or not confirmed by its
    windows; return the judgement taken again."""
    if verdict.rule != rule:
        raise ArtifactError(
            "the verdict was judged under another rule than this repository's perf.toml "
            "[gate] (did [gate] change on the default branch meanwhile? re-run the check)"
        )
    judgement = judge_folder(folder, verdict)
    if judgement != verdict.judgement:
        if (judgement.decision, judgement.pairs) == (
            verdict.judgement.decision,
            verdict.judgement.pairs,
        ):
            raise ArtifactError(
                "windows.json judges to the verdict's decision, but with other figures or "
                "reasons than the verdict holds"
            )
        raise ArtifactError(
            f"windows.json judges to {judgement.decision!r} over {judgement.pairs} windows "
            f"under the verdict's rule, but the verdict says {verdict.judgement.decision!r} "
            f"over {verdict.judgement.pairs}"
        )
    return judgement
