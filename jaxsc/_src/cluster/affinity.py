"""Affinity matrices from self-expression coefficients (SPEC section 2)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsc._src.cluster.large import randomized_top_subspace


def top_singular_subspace(sym: jax.Array, rank: int, method: str = "eigh",
                          key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Top ``rank`` singular triplets of a symmetric matrix: ``(U, sigma)`` with sigma descending.

    For symmetric S the singular values are |eigenvalues| and the left singular vectors the eigenvectors:
    ``method="eigh"`` gets them exactly from one ``eigh``; ``"randomized"`` approximately by
    :func:`jaxsc.cluster.randomized_top_subspace` (8 power steps from a Gaussian start drawn from ``key``).
    """
    if method == "randomized":
        return randomized_top_subspace(sym, rank, jax.random.PRNGKey(0) if key is None else key, iters=8)
    evals, evecs = jnp.linalg.eigh(sym)
    top = jnp.argsort(-jnp.abs(evals))[:rank]
    return evecs[:, top], jnp.abs(evals[top])


def svd_affinity(coef: jax.Array, n_clusters: int, subspace_dim: int, power: float,
                 add_identity: bool = False, symmetrize_abs: bool = False, subspace: str = "eigh",
                 key: jax.Array | None = None) -> jax.Array:
    """The DSC-Net affinity (EDSC heuristic).

    1. optionally C <- C - diag(C) + I (the COIL scripts);
    2. S = (C + C^T) / 2, or (|C| + |C|^T) / 2 with ``symmetrize_abs``;
    3. U, sigma = top r = min(subspace_dim * K + 1, n - 1) singular triplets of S;
       U <- U diag(sqrt(sigma)), rows L2-normalised;
    4. A = max(U U^T, 0) ** power; A <- A / max(A); A <- (A + A^T) / 2.

    ``subspace``, ``key``: how step 3 is solved (:func:`top_singular_subspace`'s ``method``).
    """
    n = coef.shape[0]
    if add_identity:
        coef = coef - jnp.diag(jnp.diagonal(coef)) + jnp.eye(n, dtype=coef.dtype)
    if symmetrize_abs:
        coef = jnp.abs(coef)
    sym = 0.5 * (coef + coef.T)
    rank = min(subspace_dim * n_clusters + 1, n - 1)
    u, sigma = top_singular_subspace(sym, rank, subspace, key)
    u = u * jnp.sqrt(sigma)[None, :]
    norms = jnp.linalg.norm(u, axis=1, keepdims=True)
    u = u / jnp.where(norms > 0, norms, 1.0)
    a = jnp.maximum(u @ u.T, 0.0) ** power
    a = a / jnp.max(a)
    return 0.5 * (a + a.T)


def simple_affinity(coef: jax.Array) -> jax.Array:
    """A = (|C| + |C|^T) / 2 (the LRSC paper's affinity)."""
    magnitude = jnp.abs(coef)
    return 0.5 * (magnitude + magnitude.T)
