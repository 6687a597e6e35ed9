"""Pairwise distances between rows of H (n, d) and centres W (k, d), each an ``(n, k)`` matrix; the
definitions of ``scipy.spatial.distance.cdist`` with the same metric names."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def euclidean_distance(h: jax.Array, w: jax.Array) -> jax.Array:
    """z_ij = ||h_i - w_j||_2 (exactly 0 at coincidence, with a finite gradient there)."""
    sq = jnp.sum(jnp.square(h[:, None, :] - w[None, :, :]), axis=-1)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def unit_rows(v: jax.Array) -> jax.Array:
    """Rows scaled to unit L2 norm; zero rows stay zero, with zero (not NaN) gradient: the norm is taken of a
    squared sum that is replaced by 1 where it is 0, since d||v||/dv = v / ||v|| is 0/0 at v = 0."""
    sq = jnp.sum(jnp.square(v), axis=-1, keepdims=True)
    nonzero = sq > 0
    return jnp.where(nonzero, v / jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0)


def pairwise_sq_euclidean(a: jax.Array, b: jax.Array | None = None) -> jax.Array:
    """``(n, m)`` matrix of ||a_i - b_j||^2 by the Gram expansion, clipped at 0 (``b`` defaults to ``a``)."""
    b = a if b is None else b
    return jnp.maximum(jnp.sum(jnp.square(a), axis=1)[:, None] + jnp.sum(jnp.square(b), axis=1)[None, :]
                       - 2.0 * (a @ b.T), 0.0)


def cosine_distance(h: jax.Array, w: jax.Array) -> jax.Array:
    """z_ij = 1 - h_i . w_j / (||h_i|| ||w_j||)  (SAI Eq. 9)."""
    return 1.0 - unit_rows(h) @ unit_rows(w).T


def correlation_distance(h: jax.Array, w: jax.Array) -> jax.Array:
    """z_ij = 1 - (h_i - mean(h_i)) . (w_j - mean(w_j)) / (||h_i - mean(h_i)|| ||w_j - mean(w_j)||)  (SAI Eq. 10)."""
    return cosine_distance(h - h.mean(axis=1, keepdims=True), w - w.mean(axis=1, keepdims=True))


def cityblock_distance(h: jax.Array, w: jax.Array) -> jax.Array:
    """z_ij = sum_l |h_il - w_jl|  (SAI Eq. 11)."""
    return jnp.sum(jnp.abs(h[:, None, :] - w[None, :, :]), axis=-1)


DISTANCES = {"euclidean": euclidean_distance, "cosine": cosine_distance, "correlation": correlation_distance,
             "cityblock": cityblock_distance}
