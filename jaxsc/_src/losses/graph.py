"""Graph terms built from the self-expression coefficients C (RGRL / PSSC).

S = (|C| + |C|^T) / 2 is the similarity graph of the samples; every term below is computed with matrix products,
never with an n x n x D tensor.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def coefficient_similarity(coef: jax.Array) -> jax.Array:
    """S = (|C| + |C|^T) / 2."""
    if coef.ndim != 2 or coef.shape[0] != coef.shape[1]:
        raise ValueError(f"C must be square (n, n), got shape {coef.shape}")
    magnitude = jnp.abs(coef)
    return 0.5 * (magnitude + magnitude.T)


def normalized_adjacency_matmul(similarity: jax.Array, y: jax.Array, *, self_loops: bool = True) -> jax.Array:
    """W Y with W = D^-1/2 (S + I) D^-1/2 and D = diag(rowsum(S + I)) (``self_loops=False``: S instead of S + I).

    W itself is never formed: W Y = d * ((S + I) (d * Y)) with d = rowsum^-1/2.
    """
    degree = jnp.sum(similarity, axis=1) + (1.0 if self_loops else 0.0)
    scale = jax.lax.rsqrt(jnp.maximum(degree, jnp.finfo(similarity.dtype).tiny))[:, None]
    scaled = scale * y
    product = similarity @ scaled + (scaled if self_loops else 0.0)
    return scale * product


def laplacian_reconstruction_loss(x: jax.Array, x_hat: jax.Array, coef: jax.Array, *,
                                  self_loops: bool = True) -> jax.Array:
    """RGRL's relation-weighted reconstruction (paper Eq. 3 and 6), rows of ``x``/``x_hat`` flattened:

        L = ||X - X_hat||_F^2 + 2 tr(X^T Ln X_hat),   Ln = I - W,   W = D^-1/2 (S + I) D^-1/2.

    For any symmetric W with row sums w_i this equals
    ``sum_ij W_ij ||x_i - x_hat_j||^2 + sum_i (1 - w_i) (||x_i||^2 + ||x_hat_i||^2)``; the paper takes the
    normalised degree as I (w_i = 1), which leaves the pairwise sum. The reference code adds the self-loops
    (``self_loops=True``); ``self_loops=False`` builds W from S alone.
    """
    x, x_hat = x.reshape(x.shape[0], -1), x_hat.reshape(x_hat.shape[0], -1)
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstruction shape {x_hat.shape} differs from input shape {x.shape}")
    if coef.shape != (x.shape[0], x.shape[0]):
        raise ValueError(f"C has shape {coef.shape}, expected ({x.shape[0]}, {x.shape[0]})")
    w_x_hat = normalized_adjacency_matmul(coefficient_similarity(coef), x_hat, self_loops=self_loops)
    trace = jnp.sum(x * x_hat) - jnp.sum(x * w_x_hat)
    return jnp.sum(jnp.square(x - x_hat)) + 2.0 * trace
