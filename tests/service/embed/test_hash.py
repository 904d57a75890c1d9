"""The hash embedder: deterministic, normalised, clustered by shared vocabulary."""

from __future__ import annotations

import numpy as np

from service.embed.hash import hash_embed
from service.model import DIM


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    a = hash_embed(["telescope lens and stars", "bread flour"])
    b = hash_embed(["telescope lens and stars", "bread flour"])
    assert a.shape == (2, DIM)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_hash_embedder_clusters_shared_vocabulary() -> None:
    v = hash_embed(
        ["telescope observatory star orbit", "star orbit telescope", "flour dough oven butter"]
    )
    assert v[0] @ v[1] > 0.5 > abs(float(v[0] @ v[2]))
