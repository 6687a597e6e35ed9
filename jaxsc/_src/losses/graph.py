"""Graph terms built from the self-expression coefficients C (RGRL / PSSC).

S = (|C| + |C|^T) / 2 is the similarity graph of the samples; every term below is computed with matrix products,
never with an n x n x D tensor.
"""
from __future__ import annotations

from functools import partial

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

    tr(X^T W X_hat) = sum_ij W_ij M_ij is computed from the Gram matrix M = X X_hat^T by a custom VJP
    (:func:`_weighted_gram`), so the value and its gradients take two n x n by n x D products (M, and W X for
    the gradient with respect to X_hat) where autodiff of W X_hat took three (W X_hat, its transpose product and
    the outer product for the gradient with respect to C).
    """
    x, x_hat = x.reshape(x.shape[0], -1), x_hat.reshape(x_hat.shape[0], -1)
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstruction shape {x_hat.shape} differs from input shape {x.shape}")
    if coef.shape != (x.shape[0], x.shape[0]):
        raise ValueError(f"C has shape {coef.shape}, expected ({x.shape[0]}, {x.shape[0]})")
    trace = jnp.sum(x * x_hat) - _weighted_gram(x, x_hat, coef, self_loops)
    return jnp.sum(jnp.square(x - x_hat)) + 2.0 * trace


def _degree_scale(magnitude: jax.Array, self_loops: bool) -> jax.Array:
    """r = rowsum(S [+ I])^-1/2 with S = (|C| + |C|^T) / 2, from |C|'s row and column sums."""
    degree = 0.5 * (jnp.sum(magnitude, axis=1) + jnp.sum(magnitude, axis=0)) + (1.0 if self_loops else 0.0)
    return jax.lax.rsqrt(jnp.maximum(degree, jnp.finfo(magnitude.dtype).tiny))


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _weighted_gram(x: jax.Array, x_hat: jax.Array, coef: jax.Array, self_loops: bool) -> jax.Array:
    """tr(X^T W X_hat) = sum_ij W_ij <x_i, x_hat_j>, W = D^-1/2 (S [+ I]) D^-1/2 (see the caller)."""
    return _weighted_gram_fwd(x, x_hat, coef, self_loops)[0]


def _weighted_gram_fwd(x, x_hat, coef, self_loops):
    """sum_ij S_ij r_i r_j M_ij [+ sum_i r_i^2 M_ii], r = rowsum(S [+ I])^-1/2; M is the only n x n residual."""
    gram, r = x @ x_hat.T, _degree_scale(jnp.abs(coef), self_loops)
    value = jnp.sum(coefficient_similarity(coef) * r[:, None] * r[None, :] * gram)
    if self_loops:
        value = value + jnp.sum(jnp.square(r) * jnp.sum(x * x_hat, axis=1))
    return value, (x, x_hat, coef, gram, r)


def _weighted_gram_bwd(self_loops, residuals, g):
    """With W = S * r r^T (symmetric) and P = W * M:

    dL/dr_k = (rowsum(P)_k + colsum(P)_k) / r_k [+ 2 r_k M_kk],   u = -(r^3 / 2) dL/dr,
    dL/dC_ij = g sign(C_ij) (r_i r_j (M_ij + M_ji) / 2 + (u_i + u_j) / 2)   (sign(0) = 1, as autodiff of |C|),
    dL/dX_hat = g (W [+ diag(r^2)]) X,   dL/dX = g (W [+ diag(r^2)]) X_hat   (XLA drops the one not used).
    """
    x, x_hat, coef, gram, r = residuals
    weights = coefficient_similarity(coef) * r[:, None] * r[None, :]
    weighted_gram = weights * gram
    d_r = (jnp.sum(weighted_gram, axis=1) + jnp.sum(weighted_gram, axis=0)) / r
    self_weight = 0.0
    if self_loops:
        d_r = d_r + 2.0 * r * jnp.sum(x * x_hat, axis=1)
        self_weight = jnp.square(r)[:, None]
    u = -0.5 * r ** 3 * d_r
    d_coef = g * jnp.where(coef < 0, -1.0, 1.0).astype(coef.dtype) * (
        0.5 * r[:, None] * r[None, :] * (gram + gram.T) + 0.5 * (u[:, None] + u[None, :]))
    d_x_hat = g * (weights @ x + self_weight * x)
    d_x = g * (weights @ x_hat + self_weight * x_hat)
    return d_x, d_x_hat, d_coef


_weighted_gram.defvjp(_weighted_gram_fwd, _weighted_gram_bwd)
