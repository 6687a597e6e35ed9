"""LRSC's model-level and self-supervision terms (papers/lrsc_*: Eq. 4-5, 7-9).

- Distillation from a deeper teacher: W_ij = exp(-||t_i - t_j||^2 / t) on teacher features, and the weighted
  locality sum_{i != j} W_ij ||z_i - z_j||^2 in trace form (O(n^2 d), no n x n x d tensor), as in Eq. 4
  (``"sum"``) or divided by Z's mean squared pairwise distance (``"normalized"``, a departure from the paper:
  the sum is lowered by shrinking Z, which with a ReLU encoder ends in a dead encoder).
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
    t = jnp.asarray(features).reshape(features.shape[0], -1)
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
    z, weights = jnp.asarray(z).reshape(z.shape[0], -1), jnp.asarray(weights)
    if weights.shape != (z.shape[0], z.shape[0]):
        raise ValueError(f"weights have shape {weights.shape}, expected ({z.shape[0]}, {z.shape[0]})")
    weights = weights * (1.0 - jnp.eye(z.shape[0], dtype=weights.dtype))
    sq = jnp.sum(jnp.square(z), axis=1)
    degree = jnp.sum(weights, axis=0) + jnp.sum(weights, axis=1)
    return jnp.sum(degree * sq) - 2.0 * jnp.sum(z * (weights @ z))


def normalized_locality_loss(z: jax.Array, weights: jax.Array) -> jax.Array:
    """sum_{i != j} W_ij ||z_i - z_j||^2 / mean_{i != j} ||z_i - z_j||^2.

    The distillation sum measured in units of Z's own spread: invariant to Z -> a Z + b, so that it shapes which
    samples are close but cannot be lowered by shrinking Z. With row-normalised W it equals n for uniform
    weights or for a Z unrelated to the teacher, and less when the teacher's neighbours are closer than average.
    The mean uses sum_{i != j} ||z_i - z_j||^2 = 2 n sum_i ||z_i - z_mean||^2 (O(n d)); a collapsed Z (all rows
    equal) gives 0.
    """
    z = jnp.asarray(z).reshape(z.shape[0], -1)
    n = z.shape[0]
    centred = z - jnp.mean(z, axis=0, keepdims=True)  # both sums are translation invariant; centring avoids
    mean_sq_distance = 2.0 * n * jnp.sum(jnp.square(centred)) / (n * (n - 1))  # cancellation in the trace form
    spread = mean_sq_distance > jnp.finfo(z.dtype).tiny
    ratio = weighted_locality_loss(centred, weights) / jnp.where(spread, mean_sq_distance, 1.0)
    return jnp.where(spread, ratio, 0.0)  # (the double where keeps the gradient of a collapsed Z finite)


DISTILLATION_FORMS = {"sum": weighted_locality_loss, "normalized": normalized_locality_loss}


def distillation_loss(z: jax.Array, weights: jax.Array, form: str = "normalized") -> jax.Array:
    """LRSC's distillation term: :func:`weighted_locality_loss` (``form="sum"``, the paper's Eq. 4) or
    :func:`normalized_locality_loss` (``"normalized"``)."""
    if form not in DISTILLATION_FORMS:
        raise ValueError(f"unknown distillation form {form!r}; choose one of {sorted(DISTILLATION_FORMS)}")
    return DISTILLATION_FORMS[form](z, weights)


NCE_REDUCTIONS = ("mean", "sum")


def infonce_loss(z: jax.Array, g: jax.Array, temperature: float = 0.5, reduction: str = "mean") -> jax.Array:
    """L = -a sum_i log( exp(<z_i, g_i>/s) / sum_j exp(<z_i, g_j>/s) ) with rows L2-normalised, a = 1/n
    (``reduction="mean"``) or 1 (``"sum"``): Eq. 8 is the term of sample i, an n-way classifier that recognises
    g_i = (C Z)_i as the positive of z_i."""
    if reduction not in NCE_REDUCTIONS:
        raise ValueError(f"unknown InfoNCE reduction {reduction!r}; choose one of {NCE_REDUCTIONS}")
    z, g = z.reshape(z.shape[0], -1), g.reshape(g.shape[0], -1)
    if z.shape != g.shape:
        raise ValueError(f"Z {z.shape} and G {g.shape} must have the same shape")
    z, g = unit_rows(z), unit_rows(g)
    # log sum_j exp(<z_i, g_j>/s) - <z_i, g_i>/s: the positives from a row-wise product, not from an n x n
    # log-softmax (one n x n temporary fewer in a training step)
    per_sample = jax.nn.logsumexp(z @ g.T / temperature, axis=1) - jnp.sum(z * g, axis=1) / temperature
    return jnp.mean(per_sample) if reduction == "mean" else jnp.sum(per_sample)
