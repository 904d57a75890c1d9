"""Made-up vectors, hits and write records shared by the cache tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.cache.results import CachedResult
from service.cache.writelog import WriteLog, WriteRecord
from service.model import DIM, Hit

Floats = npt.NDArray[np.float32]


def unit(seed: int) -> Floats:
    vec = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vec / np.linalg.norm(vec)


def towards(base: Floats, cos: float, seed: int) -> Floats:
    """A unit vector at cosine similarity ``cos`` to the unit vector ``base``."""
    other = unit(seed)
    other -= float(other @ base) * base
    other /= np.linalg.norm(other)
    out = cos * base + np.sqrt(1 - cos**2) * other
    result: Floats = (out / np.linalg.norm(out)).astype(np.float32)
    return result


QUERY = unit(1)
# scores 0.9 .. 0.6: the k-th (worst) distance of this 4-hit list is 0.4
HITS = tuple(Hit(100 + i, f"doc {i}", 0.9 - 0.1 * i, "t/a") for i in range(4))


def cached(gen: int = 10, hits: tuple[Hit, ...] = HITS) -> CachedResult:
    return CachedResult.of(hits, 0.01, 1e12, gen, QUERY.tobytes())


def log_of(*records: WriteRecord, first: int = 11, size: int = 100) -> WriteLog:
    log = WriteLog(size)
    log.observe(first + len(records) - 1, [(first + n, r) for n, r in enumerate(records)])
    return log


def insert_record(cos: float, topic: str = "t/a", doc_id: int = 500) -> WriteRecord:
    return WriteRecord.insert(doc_id, topic, towards(QUERY, cos, seed=10_000 + doc_id))
