"""Reconstruction losses."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def reconstruction_loss(x: jax.Array, x_hat: jax.Array) -> jax.Array:
    """L_rec = ||X - X_hat||_F^2 = sum_i ||x_i - x_hat_i||^2 (a plain sum of squares, no 1/2, no mean)."""
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstruction shape {x_hat.shape} differs from input shape {x.shape}")
    return jnp.sum(jnp.square(x - x_hat))
