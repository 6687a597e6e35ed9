"""The self-expression loss of the DSC family."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def self_expression_loss(z: jax.Array, zc: jax.Array) -> jax.Array:
    """L_se = ||Z - C Z||_F^2, given Z and Zc = C Z (both ``(n, d)``)."""
    if z.shape != zc.shape:
        raise ValueError(f"self-expressed latent shape {zc.shape} differs from latent shape {z.shape}")
    return jnp.sum(jnp.square(z - zc))
