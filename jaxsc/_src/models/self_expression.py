"""The self-expression layer: an n x n coefficient matrix C with Zc = C Z."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def init_coefficients(n: int, value: float = 1e-8, dtype=jnp.float32) -> jax.Array:
    """C initialised to a small constant (1e-8 in DSC-Net, 1e-4 in its EYaleB script, 1e-5 in RGRL/PSSC)."""
    if n < 2:
        raise ValueError(f"self-expression needs at least 2 samples, got n={n}")
    return jnp.full((n, n), value, dtype)


def self_express(coef: jax.Array, z: jax.Array, *, zero_diagonal: bool = False,
                 precision: jax.lax.Precision | None = None, matmul_dtype=None) -> jax.Array:
    """Zc = C Z, row i = sum_j C_ij z_j; with ``zero_diagonal`` the diagonal of C is masked: Zc = C Z - diag(C) Z.

    Args:
      coef: ``(n, n)`` coefficients.
      z: ``(n, d)`` latent rows.
      zero_diagonal: force diag(C) = 0 in the forward pass (no n x n mask is built).
      precision: matmul precision passed to ``jnp.matmul``.
      matmul_dtype: cast both operands to this dtype for the product (e.g. ``jnp.bfloat16``), accumulating
        in float32.
    """
    if coef.ndim != 2 or coef.shape[0] != coef.shape[1] or coef.shape[1] != z.shape[0]:
        raise ValueError(f"coefficients {coef.shape} do not match {z.shape[0]} latent rows")
    a, b = (coef, z) if matmul_dtype is None else (coef.astype(matmul_dtype), z.astype(matmul_dtype))
    zc = jnp.matmul(a, b, precision=precision, preferred_element_type=jnp.float32).astype(z.dtype)
    if zero_diagonal:
        zc = zc - jnp.diagonal(coef)[:, None] * z
    return zc
