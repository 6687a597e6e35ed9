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
    tau = column_threshold_levels(coef, threshold)
    return jnp.where(_magnitude(coef) >= tau[None, :], coef, jnp.zeros_like(coef))


def _magnitude(coef: jax.Array) -> jax.Array:
    return jnp.abs(coef).astype(jnp.float32)


def column_threshold_levels(coef: jax.Array, threshold: float) -> jax.Array:
    """tau_j of :func:`threshold_coefficients`, ``(n,)``: the smallest tau with m_j(tau) <= ``threshold`` ||C_:j||_1,
    by bisection on the bit patterns of non-negative float32 (ordered like the values): 32 halvings of
    [0, max_i |C_ij|] pin it exactly. The halvings are unrolled, each one fused pass over C: in a ``fori_loop``
    XLA kept C and |C| in the loop's state, and in its CPU plan at n = 8000 the thresholded C then needed one
    n x n temporary beside its output and the iterative cluster stage two (36.5 GiB at n = 70,000); unrolled,
    none and one.
    """
    magnitude = _magnitude(coef)
    bound = threshold * jnp.sum(magnitude, axis=0)

    def mass_above(tau):  # sum_i |C_ij| over |C_ij| > tau_j, per column
        return jnp.sum(jnp.where(magnitude > tau[None, :], magnitude, 0.0), axis=0)

    hi = jax.lax.bitcast_convert_type(jnp.max(magnitude, axis=0), jnp.int32)
    lo = jnp.full_like(hi, -1)  # below every non-negative pattern
    for _ in range(32):
        mid = lo + (hi - lo) // 2
        fits = mass_above(jax.lax.bitcast_convert_type(jnp.maximum(mid, 0), jnp.float32)) <= bound
        lo, hi = jnp.where(fits, lo, mid), jnp.where(fits, mid, hi)
    # an all-zero column ends below 0: keep its (zero) entries
    return jax.lax.bitcast_convert_type(jnp.maximum(hi, 0), jnp.float32)
