"""Fresh allocations vs. reusable pooled buffers on the embedding path, interleaved.

``python benchmarks/embed_buffers.py [--rounds N] [--batch-sizes 1,8,32] [--json PATH]``
runs both embedders in-process (no server), warm, each batch size as ``fresh`` then
``pooled`` in every round (ABAB), and prints per-call medians with their IQR, the
median of the per-round paired ratios, and the tracemalloc peak and retained bytes per
call for both ways.

``fresh`` is the service's code path (``service.embed.hash``, ``service.embed.minilm``).
``pooled`` is the same arithmetic, op for op (its vectors are checked bit-identical before
timing), with every per-call temporary taken from a bounded, thread-safe free-list of numpy
arrays keyed by shape and dtype:

- hash embedder: the per-feature ``direction * weight`` product (one (DIM,) scratch);
- MiniLM: input_ids, attention_mask and token_type_ids, the model output (written in
  place through an onnxruntime IOBinding), the mask weights, the masked product, the
  pooled sums and the norms.

The returned (batch, DIM) vectors are never pooled in either variant: callers keep them
(the embedding cache, the search response), so reusing them would alias results.

Result (docs/profiling.md, "Memory pools for embedding buffers"): no time gain for
either embedder, so the pool is not in the service; this script keeps the negative result
reproducible.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import threading
import time
import tracemalloc
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from service.embed.hash import _feature, feature_counts, hash_embed
from service.embed.minilm import MiniLMEmbedder, _LoadedModel
from service.model import DIM, Vectors

Key = tuple[tuple[int, ...], str]
EmbedFn = Callable[[Sequence[str]], Vectors]

_WORDS = [
    "telescope",
    "lens",
    "star",
    "orbit",
    "planet",
    "galaxy",
    "bread",
    "flour",
    "dough",
    "oven",
    "butter",
    "yeast",
    "piano",
    "chord",
    "scale",
    "tempo",
    "laptop",
    "battery",
    "screen",
    "keyboard",
    "garden",
    "tomato",
    "soil",
    "compost",
    "river",
    "legion",
    "empire",
    "bank",
    "interest",
    "rate",
    "inflation",
    "bond",
    "market",
    "engine",
    "brake",
    "tyre",
    "fuel",
    "vaccine",
    "virus",
    "immune",
    "cell",
    "protein",
    "enzyme",
    "glacier",
    "volcano",
    "earthquake",
    "tide",
    "coral",
    "reef",
]


class BufferPool:
    """A bounded free-list of numpy arrays keyed by (shape, dtype); thread-safe.

    ``borrow`` hands out an array (from the free-list, or new) for the duration of a
    ``with`` block and takes it back afterwards, so no two callers hold the same array.
    At most ``per_key`` idle arrays are kept per key and ``max_bytes`` in total; the
    least recently used keys are dropped first.
    """

    def __init__(self, max_bytes: int = 64 << 20, per_key: int = 4) -> None:
        self.max_bytes = max_bytes
        self.per_key = per_key
        self._free: OrderedDict[Key, list[npt.NDArray[Any]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def idle_bytes(self) -> int:
        return self._bytes

    def acquire(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        key = (shape, np.dtype(dtype).str)
        with self._lock:
            free = self._free.get(key)
            if free:
                self._free.move_to_end(key)
                arr = free.pop()
                self._bytes -= arr.nbytes
                self.hits += 1
                return arr
            self.misses += 1
        return np.empty(shape, dtype=dtype)

    def release(self, arr: npt.NDArray[Any]) -> None:
        key = (arr.shape, arr.dtype.str)
        if arr.nbytes > self.max_bytes:
            return
        with self._lock:
            free = self._free.setdefault(key, [])
            self._free.move_to_end(key)
            if len(free) >= self.per_key:
                return
            free.append(arr)
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes:
                _, oldest = next(iter(self._free.items()))
                self._bytes -= oldest.pop(0).nbytes
                if not oldest:
                    self._free.popitem(last=False)

    @contextmanager
    def borrow(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> Iterator[npt.NDArray[Any]]:
        arr = self.acquire(shape, dtype)
        try:
            yield arr
        finally:
            self.release(arr)


def hash_embed_pooled(texts: Sequence[str], pool: BufferPool) -> Vectors:
    """``service.embed.hash.hash_embed`` with the per-feature product in a pooled scratch."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)  # returned: never pooled
    with pool.borrow((DIM,), np.float32) as term:
        for row, text in enumerate(texts):
            vec = out[row]
            for tok, n in feature_counts(text).items():
                np.multiply(_feature(tok), np.float32(1.0 + np.log(n)), out=term)
                vec += term
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                vec /= norm
            else:
                vec[0] = 1.0
    return out


def minilm_run_pooled(model: _LoadedModel, texts: Sequence[str], pool: BufferPool) -> Vectors:
    """``_LoadedModel.run`` with every temporary but the result taken from ``pool``."""
    encodings = model.tokenizer.encode_batch(list(texts))
    b, n = len(encodings), len(encodings[0].ids)
    f32 = np.float32
    with (
        pool.borrow((b, n), np.int64) as ids,
        pool.borrow((b, n), np.int64) as mask,
        pool.borrow((b, n), np.int64) as types,
        pool.borrow((b, n, DIM), f32) as hidden,
        pool.borrow((b, n, DIM), f32) as product,
        pool.borrow((b, n, 1), f32) as weights,
        pool.borrow((b, DIM), f32) as pooled,
        pool.borrow((b, DIM), f32) as squares,
        pool.borrow((b, 1), f32) as counts,
        pool.borrow((b, 1), f32) as norms,
    ):
        for i, e in enumerate(encodings):
            ids[i] = e.ids
            mask[i] = e.attention_mask
        binding = model.session.io_binding()
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", mask)
        if "token_type_ids" in model.input_names:
            types.fill(0)
            binding.bind_cpu_input("token_type_ids", types)
        binding.bind_output("last_hidden_state", "cpu", 0, f32, hidden.shape, hidden.ctypes.data)
        model.session.run_with_iobinding(binding)
        weights[:, :, 0] = mask
        np.multiply(hidden, weights, out=product)
        np.sum(product, axis=1, out=pooled)
        np.sum(weights, axis=1, out=counts)
        np.clip(counts, 1e-9, None, out=counts)
        np.divide(pooled, counts, out=pooled)
        np.multiply(pooled, pooled, out=squares)  # np.linalg.norm's own steps, in place
        np.add.reduce(squares, axis=1, keepdims=True, out=norms)
        np.sqrt(norms, out=norms)
        np.clip(norms, 1e-12, None, out=norms)
        result: Vectors = np.divide(pooled, norms)  # returned: a fresh array
        return result


def make_batches(size: int, count: int, seed: int) -> list[list[str]]:
    """``count`` batches of ``size`` query-like texts of 3 to 30 words (varied padding)."""
    rng = np.random.default_rng(seed)
    return [
        [
            " ".join(str(w) for w in rng.choice(_WORDS, size=int(rng.integers(3, 31))))
            for _ in range(size)
        ]
        for _ in range(count)
    ]


def _pass(fn: EmbedFn, batches: list[list[str]], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for batch in batches:
            fn(batch)
    return (time.perf_counter() - start) / (repeat * len(batches))


def _alloc(fn: EmbedFn, batches: list[list[str]]) -> tuple[float, float]:
    """Median tracemalloc peak and retained bytes per call (the result is retained)."""
    peaks: list[int] = []
    kept: list[int] = []
    tracemalloc.start()
    try:
        for batch in batches:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = fn(batch)
            current, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - before)
            kept.append(current - before)
            del result
    finally:
        tracemalloc.stop()
    return statistics.median(peaks), statistics.median(kept)


def _spread(xs: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, med, q3


def measure(
    name: str,
    fresh: EmbedFn,
    pooled: EmbedFn,
    batch_size: int,
    rounds: int,
    target_s: float,
) -> dict[str, Any]:
    batches = make_batches(batch_size, 8, seed=batch_size)
    for batch in batches:  # warm-up, and the bit-identity check
        if not np.array_equal(fresh(batch), pooled(batch)):
            raise AssertionError(f"{name} b={batch_size}: pooled vectors differ from fresh")
    per_call = _pass(fresh, batches, 1)
    repeat = max(1, round(target_s / (per_call * len(batches))))
    times: dict[str, list[float]] = {"fresh": [], "pooled": []}
    for _ in range(rounds):  # ABAB
        times["fresh"].append(_pass(fresh, batches, repeat))
        times["pooled"].append(_pass(pooled, batches, repeat))
    ratios = [p / f for f, p in zip(times["fresh"], times["pooled"], strict=True)]
    row: dict[str, Any] = {"embedder": name, "batch": batch_size, "calls_per_sample": 0}
    row["calls_per_sample"] = repeat * len(batches)
    for variant, fn in (("fresh", fresh), ("pooled", pooled)):
        q1, med, q3 = _spread(times[variant])
        peak, kept = _alloc(fn, batches)
        row[variant] = {
            "median_us": round(med * 1e6, 1),
            "iqr_us": [round(q1 * 1e6, 1), round(q3 * 1e6, 1)],
            "min_max_us": [
                round(min(times[variant]) * 1e6, 1),
                round(max(times[variant]) * 1e6, 1),
            ],
            "tracemalloc_peak_bytes": int(peak),
            "tracemalloc_retained_bytes": int(kept),
        }
    q1, med, q3 = _spread(ratios)
    row["pooled_over_fresh"] = {"median": round(med, 3), "iqr": [round(q1, 3), round(q3, 3)]}
    return row


def main(
    rounds: int, batch_sizes: list[int], embedders: list[str], target_s: float
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    pools: dict[str, BufferPool] = {}
    if "hash" in embedders:
        pool = pools["hash"] = BufferPool()
        for size in batch_sizes:
            rows.append(
                measure(
                    "hash",
                    hash_embed,
                    functools.partial(hash_embed_pooled, pool=pool),
                    size,
                    rounds,
                    target_s,
                )
            )
    if "minilm" in embedders:
        model = MiniLMEmbedder(threads=1).load_sync()
        pool = pools["minilm"] = BufferPool()
        for size in batch_sizes:
            rows.append(
                measure(
                    "minilm",
                    model.run,
                    functools.partial(minilm_run_pooled, model, pool=pool),
                    size,
                    rounds,
                    target_s,
                )
            )
    return {
        "rounds": rounds,
        "rows": rows,
        "pools": {
            k: {"hits": p.hits, "misses": p.misses, "idle_bytes": p.idle_bytes}
            for k, p in pools.items()
        },
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        "| embedder | batch | fresh us/call (IQR) | pooled us/call (IQR) | pooled/fresh (IQR) "
        "| peak KiB fresh / pooled | retained KiB fresh / pooled |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        f, p, q = r["fresh"], r["pooled"], r["pooled_over_fresh"]
        lines.append(
            f"| {r['embedder']} | {r['batch']} "
            f"| {f['median_us']:.1f} ({f['iqr_us'][0]:.1f}-{f['iqr_us'][1]:.1f}) "
            f"| {p['median_us']:.1f} ({p['iqr_us'][0]:.1f}-{p['iqr_us'][1]:.1f}) "
            f"| {q['median']:.3f} ({q['iqr'][0]:.3f}-{q['iqr'][1]:.3f}) "
            f"| {f['tracemalloc_peak_bytes'] / 1024:.1f} / "
            f"{p['tracemalloc_peak_bytes'] / 1024:.1f} "
            f"| {f['tracemalloc_retained_bytes'] / 1024:.1f} / "
            f"{p['tracemalloc_retained_bytes'] / 1024:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch-sizes", default="1,8,32", help="comma-separated")
    parser.add_argument("--embedders", default="hash,minilm", help="comma-separated")
    parser.add_argument(
        "--sample-s", type=float, default=0.2, help="target seconds per timed sample"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    result = main(
        args.rounds,
        [int(s) for s in args.batch_sizes.split(",")],
        args.embedders.split(","),
        args.sample_s,
    )
    print(_table(result))
    print(json.dumps(result["pools"]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
