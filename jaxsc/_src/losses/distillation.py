"""LRSC's model-level and self-supervision terms (papers/lrsc_*: Eq. 4-5, 7-9).

- Distillation from a deeper teacher: W_ij = exp(-||t_i - t_j||^2 / t) on teacher features, and the weighted
  locality sum_{i != j} W_ij ||z_i - z_j||^2 in trace form (O(n^2 d), no n x n x d tensor).
- Self-supervision: InfoNCE between the L2-normalised rows of Z and of G = C Z.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsc._src.losses.distances import pairwise_sq_euclidean, unit_rows


def heat_kernel_weights(features: jax.Array, bandwidth: float | None = None,
                        row_normalize: bool = False) -> jax.Array:
    """W_ij = exp(-||t_i - t_j||^2 / bandwidth) for i != j, W_ii = 0 (Eq. 5).

    ``bandwidth=None`` uses the median of the off-diagonal squared distances (a label-free default).
    ``row_normalize`` divides each row by its sum, so that sum_ij W_ij ||z_i - z_j||^2 is a sum over samples of
    a weighted mean distance (on the scale of the other per-sample sums) rather than a sum over n^2 pairs.
    """
    t = features.reshape(features.shape[0], -1)
    sq = pairwise_sq_euclidean(t)
    off = 1.0 - jnp.eye(t.shape[0], dtype=sq.dtype)
    if bandwidth is None:
        bandwidth = jnp.maximum(jnp.nanmedian(jnp.where(off > 0, sq, jnp.nan)), jnp.finfo(sq.dtype).tiny)
    weights = jnp.exp(-sq / bandwidth) * off
    if row_normalize:
        weights = weights / jnp.maximum(jnp.sum(weights, axis=1, keepdims=True), jnp.finfo(sq.dtype).tiny)
    return weights


def weighted_locality_loss(z: jax.Array, weights: jax.Array) -> jax.Array:
    """sum_{i != j} W_ij ||z_i - z_j||^2 = 2 tr(Z^T L Z), L = D - (W + W^T)/2, computed as
    sum_i (r_i + c_i) ||z_i||^2 - 2 sum_ij W_ij z_i . z_j with r, c the row and column sums of W."""
    z = z.reshape(z.shape[0], -1)
    if weights.shape != (z.shape[0], z.shape[0]):
        raise ValueError(f"weights have shape {weights.shape}, expected ({z.shape[0]}, {z.shape[0]})")
    weights = weights * (1.0 - jnp.eye(z.shape[0], dtype=weights.dtype))
    sq = jnp.sum(jnp.square(z), axis=1)
    degree = jnp.sum(weights, axis=0) + jnp.sum(weights, axis=1)
    return jnp.sum(degree * sq) - 2.0 * jnp.sum(z * (weights @ z))


def infonce_loss(z: jax.Array, g: jax.Array, temperature: float = 0.5) -> jax.Array:
    """L = -(1/n) sum_i log( exp(<z_i, g_i>/s) / sum_j exp(<z_i, g_j>/s) ) with rows L2-normalised (Eq. 8):
    an n-way classifier that recognises g_i = (C Z)_i as the positive of z_i."""
    z, g = z.reshape(z.shape[0], -1), g.reshape(g.shape[0], -1)
    if z.shape != g.shape:
        raise ValueError(f"Z {z.shape} and G {g.shape} must have the same shape")
    logits = unit_rows(z) @ unit_rows(g).T / temperature
    return -jnp.mean(jnp.diagonal(jax.nn.log_softmax(logits, axis=1)))
