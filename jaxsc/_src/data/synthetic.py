"""Synthetic union-of-subspaces data."""
from __future__ import annotations

import numpy as np

from jaxsc._src.data.datasets import Dataset


def union_of_subspaces(n_subspaces: int = 5, dim: int = 4, ambient_dim: int = 30, n_per_subspace: int = 50,
                       noise: float = 0.0, seed: int = 0) -> Dataset:
    """Points drawn from a union of ``n_subspaces`` random ``dim``-dimensional linear subspaces of R^D.

    Sample i of subspace k is ``x = U_k a + noise * e`` with ``U_k`` a random D x r orthonormal basis,
    ``a ~ N(0, I_r)`` and ``e ~ N(0, I_D / D)``; rows are shuffled. Labels are the subspace indices.
    """
    if dim > ambient_dim:
        raise ValueError(f"subspace dimension {dim} exceeds the ambient dimension {ambient_dim}")
    if min(n_subspaces, dim, n_per_subspace) < 1:
        raise ValueError("n_subspaces, dim and n_per_subspace must be positive")
    rng = np.random.default_rng(seed)
    blocks, labels = [], []
    for k in range(n_subspaces):
        basis, _ = np.linalg.qr(rng.standard_normal((ambient_dim, dim)))
        blocks.append(rng.standard_normal((n_per_subspace, dim)) @ basis.T)
        labels.append(np.full(n_per_subspace, k, dtype=np.int32))
    x = np.concatenate(blocks)
    x = x + noise * rng.standard_normal(x.shape) / np.sqrt(ambient_dim)
    order = rng.permutation(x.shape[0])
    return Dataset(x[order].astype(np.float32), np.concatenate(labels)[order], "synthetic")
