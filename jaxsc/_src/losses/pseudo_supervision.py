"""PSSC's pseudo-supervision (paper Sec. III-B): a classifier head P = softmax(Z W + b) supervised by the
similarity graph S = (|C| + |C|^T)/2 (pseudo-graph) and by its own confident predictions (pseudo-labels)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsc._src.losses.distances import pairwise_sq_euclidean


def pseudo_label_loss(probs: jax.Array, threshold: float = 0.8) -> jax.Array:
    """L_label = sum_i V_i CE(p_i, onehot(argmax p_i)) = -sum_i V_i log max_k p_ik,  V_i = [max_k p_ik >= thres]
    (paper Eq. 9-10). The pseudo-label and the mask carry no gradient; the log-probability does."""
    confidence = jnp.max(probs, axis=1)
    mask = jax.lax.stop_gradient((confidence >= threshold).astype(probs.dtype))
    return -jnp.sum(mask * jnp.log(jnp.maximum(confidence, jnp.finfo(probs.dtype).tiny)))


def pseudo_graph_contrastive(probs: jax.Array, similarity: jax.Array, margin: float = 1.0) -> jax.Array:
    """Paper form (contrastive Siamese loss with S as the soft "same" target), normalised per sample:

        L_graph = (1/n) sum_ij [ S_ij d_ij^2 + (1 - S_ij) max(0, margin - d_ij)^2 ],   d_ij = ||p_i - p_j||.

    The paper names the loss but not its normalisation; 1/n makes it scale like the other per-sample sums.
    """
    sq = pairwise_sq_euclidean(probs)
    positive = sq > 1e-12  # sqrt has no usable gradient at 0 (e.g. the i = j pairs): treat those as d = 0
    dist = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    pairs = similarity * sq + (1.0 - similarity) * jnp.square(jax.nn.relu(margin - dist))
    return jnp.sum(pairs) / probs.shape[0]


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
