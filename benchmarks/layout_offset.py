"""How far the embedding model's CPU cost moves from one fresh process to the next.

The PR gate compares two service processes. Identical code in two processes read a CPU
difference of up to +-7 % that stayed constant over all of a run's windows
(docs/gate-calibration.md). This isolates one suspect: the address-space layout that the
kernel randomizes at every ``exec`` (ASLR). Each of ``--processes`` fresh interpreters loads
the service's MiniLM (int8 kernels, one thread), embeds a fixed, seeded workload of varied
batch sizes and lengths on a worker thread (as ``asyncio.to_thread`` runs it in the
service) ``--reps`` times, and reports its CPU milliseconds per text. Processes alternate
between a randomized layout and a fixed one (``personality(ADDR_NO_RANDOMIZE)``, what
``setarch -R`` sets).

    python -m benchmarks.layout_offset --processes 8

It prints each process's median, then per layout the SD between process medians and the
typical SD of one process's repetitions (its own noise), both as a share of the median.
Run it on an otherwise idle machine: a load test beside it is measured too.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

ADDR_NO_RANDOMIZE = 0x0040000  # <linux/personality.h>
_QUERY_PERSONALITY = 0xFFFFFFFF
_WORDS = (
    "vector",
    "search",
    "index",
    "postgres",
    "query",
    "latency",
    "cache",
    "stream",
    "tune",
    "recall",
    "graph",
    "neighbour",
    "embedding",
    "model",
    "batch",
    "filter",
    "topic",
    "answer",
)
_BATCH_SIZES = (1, 1, 2, 3, 4, 6, 8, 12)


@dataclass(frozen=True)
class ProcessRun:
    """One fresh process: its layout and its CPU milliseconds per text, per repetition."""

    fixed_layout: bool
    reps_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.reps_ms)


@dataclass(frozen=True)
class LayoutSpread:
    """Processes of one layout: how far their medians lie apart, beside their own noise."""

    processes: int
    median_ms: float
    between_sd: float  # SD of the process medians, a share of their median
    within_sd: float  # median over processes of the SD of its repetitions, a share


def spread(runs: Sequence[ProcessRun]) -> LayoutSpread:
    """The spread of ``runs`` (two or more, of one layout, two or more repetitions each)."""
    if len(runs) < 2 or any(len(r.reps_ms) < 2 for r in runs):
        raise ValueError(f"need 2+ processes of 2+ repetitions each, got {len(runs)}")
    medians = [r.median_ms for r in runs]
    centre = statistics.median(medians)
    within = statistics.median(statistics.stdev(r.reps_ms) for r in runs)
    return LayoutSpread(len(runs), centre, statistics.stdev(medians) / centre, within / centre)


def workload(seed: int, batches: int) -> list[list[str]]:
    """``batches`` batches of seeded texts of 3-24 words, in the service's batch sizes."""
    rng = random.Random(seed)
    return [
        [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 24))) for _ in range(size)]
        for size in (rng.choice(_BATCH_SIZES) for _ in range(batches))
    ]


def _child(seed: int, batches: int, reps: int) -> None:
    from service.embed.minilm import MiniLMEmbedder

    work = workload(seed, batches)
    texts = sum(len(b) for b in work)
    result: dict[str, object] = {}

    def measure() -> None:
        model = MiniLMEmbedder(threads=1).load_sync()
        for batch in work:  # warm-up: the session's first runs allocate its buffers
            model.run(batch)
        times = []
        for _ in range(reps):
            start = time.thread_time()
            for batch in work:
                model.run(batch)
            times.append((time.thread_time() - start) * 1000 / texts)
        result["reps_ms"] = times

    worker = threading.Thread(target=measure)
    worker.start()
    worker.join()
    with open("/proc/self/personality", encoding="ascii") as f:
        result["personality"] = int(f.read(), 16)
    print(json.dumps(result))


def _fix_layout() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    current = libc.personality(_QUERY_PERSONALITY)
    if libc.personality(current | ADDR_NO_RANDOMIZE) == -1:
        raise OSError(ctypes.get_errno(), "personality(ADDR_NO_RANDOMIZE) failed")


def run_process(fixed_layout: bool, seed: int, batches: int, reps: int) -> ProcessRun:
    """One fresh interpreter measuring the workload; its layout fixed or randomized."""
    argv = [sys.executable, "-m", "benchmarks.layout_offset", "--child"]
    argv += ["--seed", str(seed), "--batches", str(batches), "--reps", str(reps)]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_fix_layout if fixed_layout else None,  # the parent runs no threads
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"a measuring process exited {done.returncode}: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if bool(out["personality"] & ADDR_NO_RANDOMIZE) != fixed_layout:
        raise RuntimeError(f"the process ran with personality {out['personality']:#x}")
    return ProcessRun(fixed_layout, tuple(float(x) for x in out["reps_ms"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8, help="per layout (2 or more)")
    parser.add_argument("--batches", type=int, default=200, help="model calls per repetition")
    parser.add_argument("--reps", type=int, default=6, help="repetitions per process")
    parser.add_argument("--seed", type=int, default=7, help="the workload's seed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.processes < 2 or args.reps < 2 or args.batches < 1:
        parser.error(
            f"--processes {args.processes} and --reps {args.reps} must be 2 or more, "
            f"--batches {args.batches} 1 or more"
        )
    if args.child:
        _child(args.seed, args.batches, args.reps)
        return 0
    runs: list[ProcessRun] = []
    for i in range(args.processes):
        for fixed in (False, True) if i % 2 == 0 else (True, False):
            run = run_process(fixed, args.seed, args.batches, args.reps)
            runs.append(run)
            layout = "fixed" if fixed else "randomized"
            print(f"process {len(runs):2d} {layout:10s} {run.median_ms:.3f} ms per text")
    for fixed in (False, True):
        s = spread([r for r in runs if r.fixed_layout == fixed])
        print(
            f"{'fixed' if fixed else 'randomized'} layout, {s.processes} processes: median "
            f"{s.median_ms:.3f} ms per text, SD between processes {100 * s.between_sd:.1f} %, "
            f"within one process {100 * s.within_sd:.1f} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
