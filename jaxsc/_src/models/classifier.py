"""PSSC's classifier head on the latent rows: P = softmax(Z W + b), K outputs."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def init_classifier(key: jax.Array, latent_dim: int, n_clusters: int) -> dict:
    """``{'kernel': (d, K) Xavier-uniform, 'bias': zeros(K)}``."""
    kernel = jax.nn.initializers.xavier_uniform()(key, (latent_dim, n_clusters), jnp.float32)
    return {"kernel": kernel, "bias": jnp.zeros((n_clusters,), jnp.float32)}


def classifier_probs(head: dict, z: jax.Array) -> jax.Array:
    """P = softmax(Z W + b), rows of ``z`` flattened: ``(n, K)``."""
    return jax.nn.softmax(z.reshape(z.shape[0], -1) @ head["kernel"] + head["bias"], axis=-1)
