"""Penalties on the self-expression coefficients C."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def l2_penalty(coef: jax.Array) -> jax.Array:
    """R(C) = ||C||_F^2 = sum_ij C_ij^2 (DSC-L2)."""
    return jnp.sum(jnp.square(coef))


def l1_penalty(coef: jax.Array) -> jax.Array:
    """R(C) = ||C||_1 = sum_ij |C_ij| (DSC-L1; subgradient sign(C_ij), 0 at 0)."""
    return jnp.sum(jnp.abs(coef))


PENALTIES = {"l1": l1_penalty, "l2": l2_penalty}


def coefficient_penalty(coef: jax.Array, kind: str) -> jax.Array:
    """``l1_penalty`` or ``l2_penalty`` by name."""
    if kind not in PENALTIES:
        raise ValueError(f"unknown coefficient penalty {kind!r}; choose one of {sorted(PENALTIES)}")
    return PENALTIES[kind](coef)
