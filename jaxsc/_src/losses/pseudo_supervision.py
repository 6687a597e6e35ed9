"""PSSC's pseudo-supervision (paper Sec. III-B): a classifier head P = softmax(Z W + b) supervised by the
similarity graph S = (|C| + |C|^T)/2 (pseudo-graph) and by its own confident predictions (pseudo-labels)."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxsc._src.losses.distances import pairwise_sq_euclidean


def pseudo_label_loss(probs: jax.Array, threshold: float = 0.8) -> jax.Array:
    """L_label = sum_i V_i CE(p_i, onehot(argmax p_i)) = -sum_i V_i log max_k p_ik,  V_i = [max_k p_ik >= thres]
    (paper Eq. 9-10). The pseudo-label and the mask carry no gradient; the log-probability does."""
    confidence = jnp.max(probs, axis=1)
    mask = jax.lax.stop_gradient((confidence >= threshold).astype(probs.dtype))
    return -jnp.sum(mask * jnp.log(jnp.maximum(confidence, jnp.finfo(probs.dtype).tiny)))


def pseudo_graph_contrastive(probs: jax.Array, similarity: jax.Array, margin: float = 1.0,
                             block_rows: int = 256) -> jax.Array:
    """Paper form (contrastive Siamese loss with S as the soft "same" target), normalised per sample:

        L_graph = (1/n) sum_ij [ S_ij d_ij^2 + (1 - S_ij) max(0, margin - d_ij)^2 ],   d_ij = ||p_i - p_j||.

    The paper names the loss but not its normalisation; 1/n makes it scale like the other per-sample sums.

    Computed ``block_rows`` rows of the n x n pair matrices at a time, value and gradient (a custom VJP): no n x n
    temporary besides dL/dS (autodiff of the plain expression kept five, six n x n arrays in a PSSC step's plan).
    With G_ij = dL/d(d_ij^2), dL/dp_k = 2 (sum_j G_kj + sum_i G_ik) p_k - 2 (G P)_k - 2 (G^T P)_k.
    A pair at d = 0 (e.g. i = j) has no gradient through d (sqrt's derivative is infinite there). ``margin`` and
    ``block_rows`` are Python numbers (static under ``jit``).
    """
    if probs.ndim != 2 or similarity.shape != (probs.shape[0], probs.shape[0]):
        raise ValueError(f"similarity {similarity.shape} must be (n, n) for {probs.shape[0]} rows of probabilities")
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    return _contrastive(probs, similarity, float(margin), min(int(block_rows), probs.shape[0]))


def _contrastive_block(probs, similarity, margin, block_rows, start):
    """Rows ``start .. start + block_rows`` of S, of d^2 (the Gram expansion, clipped at 0), of d and of
    max(0, margin - d), and whether each pair has d > 0."""
    s = jax.lax.dynamic_slice_in_dim(similarity, start, block_rows)
    sq = pairwise_sq_euclidean(jax.lax.dynamic_slice_in_dim(probs, start, block_rows), probs)
    positive = sq > 1e-12
    dist = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    return s, sq, positive, dist, jax.nn.relu(margin - dist)


def _block_starts(n, block_rows, i):
    """Block ``i``'s first row, the last block shifted back to end at row n, and which of its rows are new (a
    shifted block repeats rows of the one before)."""
    start = jnp.minimum(i * block_rows, n - block_rows)
    return start, start + jnp.arange(block_rows) >= i * block_rows


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _contrastive(probs, similarity, margin, block_rows):
    n = probs.shape[0]

    def add_block(i, total):
        start, new = _block_starts(n, block_rows, i)
        s, sq, _, _, short = _contrastive_block(probs, similarity, margin, block_rows, start)
        pairs = s * sq + (1.0 - s) * jnp.square(short)
        return total + jnp.sum(jnp.where(new[:, None], pairs, 0.0))

    return jax.lax.fori_loop(0, -(-n // block_rows), add_block, jnp.zeros((), probs.dtype)) / n


def _contrastive_fwd(probs, similarity, margin, block_rows):
    return _contrastive(probs, similarity, margin, block_rows), (probs, similarity)


def _contrastive_bwd(margin, block_rows, residuals, cotangent):
    probs, similarity = residuals
    n = probs.shape[0]
    scale = cotangent / n

    def add_block(i, grads):
        d_sim, d_rows, col_sums, gt_p = grads
        start, new = _block_starts(n, block_rows, i)
        s, sq, positive, dist, short = _contrastive_block(probs, similarity, margin, block_rows, start)
        d_sim = jax.lax.dynamic_update_slice_in_dim(d_sim, scale * (sq - jnp.square(short)), start, 0)
        # G = dL/d(d^2): S + (1 - S) d/d(d^2) max(0, margin - d)^2, zero where d^2 was clipped and on repeated rows
        slope = jnp.where(positive, short / jnp.where(positive, dist, 1.0), 0.0)
        g = jnp.where(new[:, None] & (sq > 0), scale * (s - (1.0 - s) * slope), 0.0)
        rows = jax.lax.dynamic_slice_in_dim(probs, start, block_rows)
        own = 2.0 * jnp.sum(g, axis=1)[:, None] * rows - 2.0 * g @ probs
        d_rows = jax.lax.dynamic_update_slice_in_dim(
            d_rows, jax.lax.dynamic_slice_in_dim(d_rows, start, block_rows) + own, start, 0)
        return d_sim, d_rows, col_sums + jnp.sum(g, axis=0), gt_p + g.T @ rows

    zeros = (jnp.zeros_like(similarity), jnp.zeros_like(probs), jnp.zeros((n,), probs.dtype), jnp.zeros_like(probs))
    d_sim, d_rows, col_sums, gt_p = jax.lax.fori_loop(0, -(-n // block_rows), add_block, zeros)
    return d_rows + 2.0 * col_sums[:, None] * probs - 2.0 * gt_p, d_sim


_contrastive.defvjp(_contrastive_fwd, _contrastive_bwd)


def pseudo_graph_hinge(probs: jax.Array, similarity: jax.Array, floor: float = 1e-3) -> jax.Array:
    """Reference-code form (SPEC section 4):

        L_graph = sum_ij relu((1 - E_ij) S_ij) + relu(E_ij (floor - S_ij)) + sum_k (sum_i p_ik)^2,

    E_ij = [argmax p_i == argmax p_j] (no gradient). The first two sums push S to zero across predicted clusters
    and to at least ``floor`` within them; the last term balances the cluster sizes. (In the released script E
    is built from a 1-D argmax compared with its own transpose, so it is all ones; this is the intended form.)
    """
    assignment = jnp.argmax(probs, axis=1)
    same = jax.lax.stop_gradient((assignment[:, None] == assignment[None, :]).astype(similarity.dtype))
    hinge = jax.nn.relu((1.0 - same) * similarity) + jax.nn.relu(same * (floor - similarity))
    return jnp.sum(hinge) + jnp.sum(jnp.square(jnp.sum(probs, axis=0)))


PSEUDO_GRAPH_LOSSES = {"contrastive": pseudo_graph_contrastive, "hinge": pseudo_graph_hinge}
