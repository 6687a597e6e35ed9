"""Affinity matrices from self-expression coefficients (SPEC section 2)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsc._src.checks import check_square
from jaxsc._src.cluster.subspace import top_singular_subspace


def nonnegative_power(similarity: jax.Array, power: float) -> jax.Array:
    """max(similarity, 0) ** power, by repeated multiplication when ``power`` is a Python integer value (4.0
    included: ``lax.integer_pow``, several times faster than the exp/log of a float power)."""
    positive = jnp.maximum(similarity, 0.0)
    if isinstance(power, (int, float)) and float(power).is_integer():
        return jax.lax.integer_pow(positive, int(power))
    return positive ** power


def svd_operator(coef: jax.Array, add_identity: bool = False, symmetrize_abs: bool = False) -> jax.Array:
    """Steps 1-2 of :func:`svd_affinity`: S = (C' + C'^T) / 2 with C' = C - diag(C) + I under ``add_identity``,
    and |C'| in place of C' under ``symmetrize_abs``."""
    check_square(coef)
    if add_identity:
        coef = coef - jnp.diag(jnp.diagonal(coef)) + jnp.eye(coef.shape[0], dtype=coef.dtype)
    if symmetrize_abs:
        coef = jnp.abs(coef)
    return 0.5 * (coef + coef.T)


def svd_rank(n: int, n_clusters: int, subspace_dim: int) -> int:
    """r = min(subspace_dim * K + 1, n - 1), the singular triplets kept by step 3 of :func:`svd_affinity`."""
    return min(subspace_dim * n_clusters + 1, n - 1)


def svd_embedding(coef: jax.Array, n_clusters: int, subspace_dim: int, add_identity: bool = False,
                  symmetrize_abs: bool = False, subspace: str = "eigh", key: jax.Array | None = None,
                  iters: int = 8) -> jax.Array:
    """Steps 1-3 of :func:`svd_affinity`: the rows of U diag(sqrt(sigma)), L2-normalised, ``(n, r)``.

    ``subspace``, ``key``, ``iters``: how the top singular triplets are found
    (:func:`jaxsc.cluster.top_singular_subspace`).
    """
    sym = svd_operator(coef, add_identity, symmetrize_abs)
    u, sigma = top_singular_subspace(sym, svd_rank(coef.shape[0], n_clusters, subspace_dim), subspace, key, iters)
    u = u * jnp.sqrt(sigma)[None, :]
    norms = jnp.linalg.norm(u, axis=1, keepdims=True)
    return u / jnp.where(norms > 0, norms, 1.0)


def svd_affinity(coef: jax.Array, n_clusters: int, subspace_dim: int, power: float,
                 add_identity: bool = False, symmetrize_abs: bool = False, subspace: str = "eigh",
                 key: jax.Array | None = None) -> jax.Array:
    """The DSC-Net affinity (EDSC heuristic).

    1. optionally C <- C - diag(C) + I (the COIL scripts);
    2. S = (C + C^T) / 2, or (|C| + |C|^T) / 2 with ``symmetrize_abs``;
    3. U, sigma = top r = min(subspace_dim * K + 1, n - 1) singular triplets of S;
       U <- U diag(sqrt(sigma)), rows L2-normalised (:func:`svd_embedding`);
    4. A = max(U U^T, 0) ** power; A <- A / max(A); A <- (A + A^T) / 2.

    ``subspace``, ``key``: how step 3 is solved (:func:`jaxsc.cluster.top_singular_subspace`'s ``method``).
    """
    u = svd_embedding(coef, n_clusters, subspace_dim, add_identity, symmetrize_abs, subspace, key)
    a = nonnegative_power(u @ u.T, power)
    a = a / jnp.max(a)
    return 0.5 * (a + a.T)


def simple_affinity(coef: jax.Array) -> jax.Array:
    """A = (|C| + |C|^T) / 2 (the LRSC paper's affinity)."""
    check_square(coef)
    magnitude = jnp.abs(coef)
    return 0.5 * (magnitude + magnitude.T)
