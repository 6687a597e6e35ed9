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


def ridge_coefficients(z: jax.Array, reg: float, *, zero_diagonal: bool = False) -> jax.Array:
    """The exact minimiser of ||Z - C Z||_F^2 + reg ||C||_F^2 over C (least-squares regression, LSR: Lu et al.
    2012), optionally subject to diag(C) = 0. With G = Z Z^T and B = (G + reg I)^-1:

        C = G B = I - reg B                     (no constraint),
        C = I - diag(B)^-1 B                    (diag(C) = 0),

    the second from each row's Lagrangian: row i solves (G + reg I) c = G e_i - m e_i with m fixed by c_i = 0,
    so c = e_i - B e_i / B_ii. O(n^2 d + n^3): for small n (LRSC's episodes), differentiable in Z.

    Args:
      z: ``(n, d)`` latent rows.
      reg: the weight of ||C||_F^2 relative to the self-expression term, > 0.
      zero_diagonal: impose diag(C) = 0.
    """
    if z.ndim != 2:
        raise ValueError(f"z must be (n, d) latent rows, got shape {z.shape}")
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    n = z.shape[0]
    eye = jnp.eye(n, dtype=z.dtype)
    gram = jnp.matmul(z, z.T, precision=jax.lax.Precision.HIGHEST)
    b = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(gram + reg * eye), eye)
    b = 0.5 * (b + b.T)
    if zero_diagonal:
        return eye - b / jnp.diagonal(b)[:, None]
    return eye - reg * b
