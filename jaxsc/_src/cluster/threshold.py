"""Column-wise thresholding of the coefficient matrix (DSC-Net's ``thrC``), vectorised."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsc._src.checks import check_square


def threshold_coefficients(coef: jax.Array, threshold: float) -> jax.Array:
    """Keep, in every column j, the largest |C_ij| until their cumulative mass exceeds ``threshold * ||C_:j||_1``.

    With the column's magnitudes sorted in decreasing order, s_1 >= s_2 >= ..., entry t is kept when
    ``sum_{u<t} s_u <= threshold * sum_u s_u`` (so the entry whose addition crosses the bound is kept);
    the others are set to 0. ``threshold >= 1`` keeps every entry.

    Equivalently entry i of column j is kept when m_j(|C_ij|) <= threshold * ||C_:j||_1, with
    m_j(tau) = sum_{i: |C_ij| > tau} |C_ij| non-increasing: the kept entries are those at or above the smallest
    tau_j with m_j(tau_j) within the bound. tau_j is found by bisection (32 masked column sums of the n x n
    magnitudes, no sort): O(n^2) per halving against the O(n^2 log n) of a column sort, and 10-20x faster on
    the CPU. Tied magnitudes at the cut are all kept (the sort rule would keep the first of them).
    """
    check_square(coef)
    if threshold >= 1:
        return coef
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    magnitude = jnp.abs(coef).astype(jnp.float32)
    bound = threshold * jnp.sum(magnitude, axis=0)

    def mass_above(tau):  # sum_i |C_ij| over |C_ij| > tau_j, per column
        return jnp.sum(jnp.where(magnitude > tau[None, :], magnitude, 0.0), axis=0)

    # Smallest tau_j with mass_above(tau_j) <= bound_j, by bisection on the bit patterns of non-negative
    # float32 (ordered like the values): 32 halvings of [0, max_j] pin it exactly.
    hi = jax.lax.bitcast_convert_type(jnp.max(magnitude, axis=0), jnp.int32)
    lo = jnp.full_like(hi, -1)  # below every non-negative pattern

    def halve(_, bounds):
        lo, hi = bounds
        mid = lo + (hi - lo) // 2
        fits = mass_above(jax.lax.bitcast_convert_type(jnp.maximum(mid, 0), jnp.float32)) <= bound
        return jnp.where(fits, lo, mid), jnp.where(fits, mid, hi)

    _, hi = jax.lax.fori_loop(0, 32, halve, (lo, hi))
    hi = jnp.maximum(hi, 0)  # an all-zero column ends below 0: keep its (zero) entries
    keep = magnitude >= jax.lax.bitcast_convert_type(hi, jnp.float32)[None, :]
    return jnp.where(keep, coef, jnp.zeros_like(coef))
