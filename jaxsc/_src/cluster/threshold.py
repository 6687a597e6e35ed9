"""Column-wise thresholding of the coefficient matrix (DSC-Net's ``thrC``), vectorised."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def threshold_coefficients(coef: jax.Array, threshold: float) -> jax.Array:
    """Keep, in every column j, the largest |C_ij| until their cumulative mass exceeds ``threshold * ||C_:j||_1``.

    With the column's magnitudes sorted in decreasing order, s_1 >= s_2 >= ..., entry t is kept when
    ``sum_{u<t} s_u <= threshold * sum_u s_u`` (so the entry whose addition crosses the bound is kept);
    the others are set to 0. ``threshold >= 1`` keeps every entry. One sort and one cumulative sum per column,
    no Python loop.
    """
    if coef.ndim != 2 or coef.shape[0] != coef.shape[1]:
        raise ValueError(f"expected a square coefficient matrix, got shape {coef.shape}")
    if threshold >= 1:
        return coef
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    n = coef.shape[0]
    magnitude = jnp.abs(coef)
    order = jnp.argsort(-magnitude, axis=0, stable=True)
    ranked = jnp.take_along_axis(magnitude, order, axis=0)
    mass_before = jnp.cumsum(ranked, axis=0) - ranked
    keep_ranked = mass_before <= threshold * jnp.sum(ranked, axis=0, keepdims=True)
    keep = jnp.zeros((n, n), bool).at[order, jnp.arange(n)[None, :]].set(keep_ranked)
    return jnp.where(keep, coef, jnp.zeros_like(coef))
