"""``perfci calibrate``: the gate's real false-alarm and detection rates on this machine.

One stack, one revision, three services from the same worktree and venv: two plain ones
(``a``, ``b``) and a ``slowed`` one started with ``SEARCH_DEBUG_CPU_SLOWDOWN`` (each search
burns that share of the process's CPU per request: a multiplicative slowdown, not a fixed
delay). The verdicts, A/A (a vs b) and slowed (a or b vs slowed), come in a seeded random
order; ``a`` and ``b`` take turns as the base. Each is a full sequential gate over windows
of its own, with its own warm-up block and its own order seed, judged by exactly the rule
``perfci gate`` uses.

Two simplifications, to fit the machine's time, and said in the output: the stack and the
running services are reused across verdicts (their caches stay warm between verdicts; the
warm-up block of each verdict is still discarded), and the shape scenarios do not run (the
SLA is not part of the calibrated rule: calibration asks whether the statistics mistake
noise for a change, and whether they see a known one).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.errors import ConfigError
from ci.experiments.gate.checkout import side_checkouts
from ci.experiments.gate.duo import DuoSpec, ServiceSpec, duo_stack
from ci.experiments.gate.sequential import measure_windows
from ci.experiments.gate.venv import ensure_service_venv
from ci.experiments.gate.windows import DuetRunner, DuetTarget, duet_design, duet_load
from ci.judge.calibration import Rate, rate
from ci.results.duet import DuetRevision, Side
from ci.settings import PerfConfig

SLOWDOWN_ENV = "SEARCH_DEBUG_CPU_SLOWDOWN"
CALIBRATION_FILE = "calibration.json"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CalibrationVerdict:
    kind: str  # "aa" | "slowed"
    decision: str  # pass | fail | inconclusive (continue at the budget counts as inconclusive)
    pairs: int
    stopped: str
    cpu_change: float | None  # Hodges-Lehmann change of cpu_ms_per_request at the last look
    seconds: float
    seed: int
    services: tuple[str, str] = ("a", "b")  # which services were the base and the candidate

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "decision": self.decision,
            "pairs": self.pairs,
            "stopped": self.stopped,
            "cpu_change": self.cpu_change,
            "seconds": round(self.seconds, 1),
            "seed": self.seed,
            "services": list(self.services),
        }


def run_calibration(
    repo: Path,
    ref: str,
    aa: int,
    slowed: int,
    slowdown: float,
    out_dir: Path,
    config: PerfConfig,
    *,
    seed: int | None = None,
    venv_root: Path | None = None,
    progress: Progress = lambda _m: None,
) -> list[CalibrationVerdict]:
    """``aa`` A/A and ``slowed`` slowed verdicts, alternating; appended to calibration.json."""
    if aa < 0 or slowed < 0 or aa + slowed == 0:
        raise ConfigError(f"--aa {aa} --slowed {slowed}: ask for at least one verdict")
    if not 0 < slowdown <= 10:
        raise ConfigError(f"--slowdown {slowdown}: expected a share of CPU in (0, 10]")
    gate = config.gate.design
    rng = random.Random(seed if seed is not None else random.SystemRandom().randrange(2**31))
    kinds = ["aa"] * aa + ["slowed"] * slowed
    rng.shuffle(kinds)  # interleaved, so a drift of the machine hits both kinds alike
    out_dir.mkdir(parents=True, exist_ok=True)
    done: list[CalibrationVerdict] = []
    with (
        tempfile.TemporaryDirectory(prefix="perfci-calibrate-") as tmp,
        side_checkouts(repo, ref, ref, Path(tmp)) as trees,
    ):
        tree = trees["base"]
        python = ensure_service_venv(tree.worktree, venv_root or repo / ".perfci" / "venvs").python
        services = [
            ServiceSpec("a", tree, python),
            ServiceSpec("b", tree, python),
            ServiceSpec("slowed", tree, python, {SLOWDOWN_ENV: repr(slowdown)}),
        ]
        spec = DuoSpec(gate.docs, gate.corpus_seed, gate.embedder, gate.workers)
        with duo_stack(services, spec, Path(tmp) / "stack", rng, progress) as duo:
            load = duet_load(gate, duo.corpus.query_log, config.sla.k6_env())
            revision = DuetRevision(ref, tree.commit)
            for i, kind in enumerate(kinds, start=1):
                verdict_seed = rng.randrange(2**31)
                # Two plain services ("a", "b") take turns as the base, so that both serve
                # the same load over the calibration: a service that is the base in every
                # verdict measures dearer per request than identical code beside it.
                base_label, plain_other = rng.sample(["a", "b"], 2)
                cand_label = plain_other if kind == "aa" else "slowed"
                base_svc, cand_svc = duo.services[base_label], duo.services[cand_label]
                targets: dict[Side, DuetTarget] = {
                    "base": DuetTarget(
                        "base", base_svc.url, base_svc.pid, base_svc.database, base_svc.valkey_pid
                    ),
                    "candidate": DuetTarget(
                        "candidate",
                        cand_svc.url,
                        cand_svc.pid,
                        cand_svc.database,
                        cand_svc.valkey_pid,
                    ),
                }
                folder = out_dir / f"verdict-{len(_existing(out_dir)) + 1:03d}-{kind}"
                runner = DuetRunner(
                    targets,
                    load,
                    folder / "windows",
                    nonce=f"c{verdict_seed:x}",
                    postgres_url=duo.servers.pg.url,
                )
                design = duet_design(gate, verdict_seed)
                t0 = time.monotonic()
                progress(f"verdict {i}/{len(kinds)}: {kind}")
                measured = measure_windows(
                    runner,
                    config.gate.rule,
                    gate,
                    design,
                    revision,
                    revision,
                    folder / "windows.json",
                    deadline=t0 + gate.budget_s,
                    progress=progress,
                )
                judgement = measured.judgement
                decision = judgement.decision
                cpu = next(
                    (m.change for m in judgement.primary_report if m.name == "cpu_ms_per_request"),
                    None,
                )
                v = CalibrationVerdict(
                    kind,
                    "inconclusive" if decision == "continue" else decision,
                    judgement.windows,
                    measured.stopped,
                    cpu,
                    time.monotonic() - t0,
                    verdict_seed,
                    (base_label, cand_label),
                )
                done.append(v)
                _append(out_dir, v, ref, tree.commit, slowdown)
                progress(
                    f"verdict {i}/{len(kinds)}: {kind} -> {v.decision} after {v.pairs} windows"
                )
    return done


def _existing(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / CALIBRATION_FILE
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    verdicts = data.get("verdicts") if isinstance(data, dict) else None
    return list(verdicts) if isinstance(verdicts, list) else []


def _append(out_dir: Path, v: CalibrationVerdict, ref: str, commit: str, slowdown: float) -> None:
    """Verdicts accumulate over invocations (``--out`` the same folder): short lock holds."""
    verdicts = [*_existing(out_dir), {**v.to_dict(), "ref": ref, "commit": commit,
                                      "slowdown": slowdown}]  # fmt: skip
    (out_dir / CALIBRATION_FILE).write_text(
        json.dumps({"verdicts": verdicts, "summary": summarize(verdicts)}, indent=2) + "\n"
    )


def summarize(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind: decision counts, the FAIL rate with its 95 % Clopper-Pearson interval."""
    out: dict[str, Any] = {}
    for kind in ("aa", "slowed"):
        decisions = [str(v["decision"]) for v in verdicts if v.get("kind") == kind]
        r: Rate | None = rate(decisions)
        cpu = sorted(float(v["cpu_change"]) for v in verdicts
                     if v.get("kind") == kind and v.get("cpu_change") is not None)  # fmt: skip
        out[kind] = {
            "verdicts": len(decisions),
            "pass": decisions.count("pass"),
            "fail": decisions.count("fail"),
            "inconclusive": decisions.count("inconclusive"),
            "fail_rate": None if r is None else r.value,
            "fail_rate_ci95": None if r is None else [r.low, r.high],
            "median_cpu_change": cpu[len(cpu) // 2] if cpu else None,
            "median_pairs": sorted(int(v["pairs"]) for v in verdicts if v.get("kind") == kind)[
                len(decisions) // 2
            ]
            if decisions
            else None,
        }
    return out
