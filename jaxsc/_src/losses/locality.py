"""UDLL's prior graph and locality loss (papers/udll_*: Eq. 3, 17, 18).

The graph is kept sparse, as k neighbour indices and weights per sample (O(n k) memory), and built in row
blocks so that no n x n distance matrix is ever held.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


@partial(jax.jit, static_argnames=("k", "block"))
def adaptive_neighbors(z: jax.Array, k: int, block: int = 512) -> tuple[jax.Array, jax.Array]:
    """Closed-form adaptive-neighbour graph (UDLL Eq. 17), one column per sample j.

    With m_ij = ||z_i - z_j||^2 sorted ascending over i != j (m_1j <= ... <= m_{k+1,j}),

        a_ij = (m_{k+1,j} - m_ij) / (k m_{k+1,j} - sum_{p<=k} m_pj)   for the k nearest i, else 0,

    the solution of min_a sum_i m_ij a_i + lambda_j a_i^2 s.t. a >= 0, 1^T a = 1 (Eq. 3) with the lambda_j of
    Eq. 16. Ties that make the denominator 0 give uniform weights 1/k.

    Returns ``(index, weight)``, both ``(n, k)``: column j's neighbours and their a_ij (each row sums to 1).
    """
    z = z.reshape(z.shape[0], -1)
    n = z.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must lie in 1..n-1 = {n - 1}, got {k}")
    sq = jnp.sum(jnp.square(z), axis=1)
    pad = (-n) % block
    rows = jnp.arange(n + pad)

    def one_block(start):
        idx = jax.lax.dynamic_slice(rows, (start,), (block,))
        zb = z[jnp.minimum(idx, n - 1)]
        dist = jnp.maximum(sq[jnp.minimum(idx, n - 1)][:, None] - 2.0 * zb @ z.T + sq[None, :], 0.0)
        dist = jnp.where(idx[:, None] == jnp.arange(n)[None, :], jnp.inf, dist)
        neg, nbr = jax.lax.top_k(-dist, k + 1)
        m = -neg
        denom = k * m[:, k:] - jnp.sum(m[:, :k], axis=1, keepdims=True)
        weight = jnp.where(denom > 0, (m[:, k:] - m[:, :k]) / jnp.where(denom > 0, denom, 1.0), 1.0 / k)
        return nbr[:, :k], weight

    index, weight = jax.lax.map(one_block, jnp.arange(0, n + pad, block))
    return index.reshape(-1, k)[:n], weight.reshape(-1, k)[:n]


def locality_loss(z: jax.Array, index: jax.Array, weight: jax.Array) -> jax.Array:
    """L_locality = sum_ij a_ij ||z_i - z_j||^2 = 2 tr(Z^T L_A Z), L_A the Laplacian of (A + A^T)/2,
    summed over the sparse graph (``index``/``weight`` from :func:`adaptive_neighbors`): O(n k d)."""
    z = z.reshape(z.shape[0], -1)
    if index.shape != weight.shape or index.shape[0] != z.shape[0]:
        raise ValueError(f"graph index {index.shape} and weight {weight.shape} must both be (n={z.shape[0]}, k)")
    return jnp.sum(weight * jnp.sum(jnp.square(z[index] - z[:, None, :]), axis=-1))
