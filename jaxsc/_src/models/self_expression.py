"""The self-expression layer: an n x n coefficient matrix C with Zc = C Z."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def init_coefficients(n: int, value: float = 1e-8, dtype=jnp.float32) -> jax.Array:
    """C initialised to a small constant (1e-8 in DSC-Net, 1e-4 in its EYaleB script, 1e-5 in RGRL/PSSC)."""
    if n < 2:
        raise ValueError(f"self-expression needs at least 2 samples, got n={n}")
    return jnp.full((n, n), value, dtype)


def without_diagonal(coef: jax.Array) -> jax.Array:
    """C with its diagonal set to 0: C_ij [i != j]. The mask is compared index by index, never stored, so XLA fuses
    it into whatever writes C (in the training step, the optimizer's update), and a C split by rows over devices
    stays split."""
    rows = jax.lax.broadcasted_iota(jnp.int32, coef.shape, 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, coef.shape, 1)
    return jnp.where(rows == cols, jnp.zeros((), coef.dtype), coef)


def self_express(coef: jax.Array, z: jax.Array, *, zero_diagonal: bool = False,
                 precision: jax.lax.Precision | None = None, matmul_dtype=None) -> jax.Array:
    """Zc = C Z, row i = sum_j C_ij z_j; with ``zero_diagonal`` the diagonal of C is masked: Zc = C Z - diag(C) Z.

    Args:
      coef: ``(n, n)`` coefficients.
      z: ``(n, d)`` latent rows.
      zero_diagonal: force diag(C) = 0 in the forward pass (no n x n mask is built).
      precision: matmul precision passed to ``jnp.matmul``.
      matmul_dtype: the product and its two gradient products with their operands rounded to this dtype (e.g.
        ``jnp.bfloat16``), accumulating in float32 (:func:`narrow_product`).
    """
    if coef.ndim != 2 or coef.shape[0] != coef.shape[1] or coef.shape[1] != z.shape[0]:
        raise ValueError(f"coefficients {coef.shape} do not match {z.shape[0]} latent rows")
    if matmul_dtype is None:
        zc = jnp.matmul(coef, z, precision=precision, preferred_element_type=jnp.float32).astype(z.dtype)
    else:
        zc = narrow_product(coef, z, jnp.dtype(matmul_dtype)).astype(z.dtype)
    if zero_diagonal:
        zc = zc - jnp.diagonal(coef)[:, None] * z
    return zc


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def narrow_product(coef: jax.Array, z: jax.Array, dtype) -> jax.Array:
    """C Z with both operands rounded to ``dtype`` and the sum in float32; the gradients are the products

        dL/dC = G Z^T,   dL/dZ = C^T G      (G = dL/d(C Z), rounded to ``dtype`` like C and Z),

    also in ``dtype`` with float32 sums and float32 results. (Autodiff of a cast-then-multiply would multiply the
    float32 G by the rounded operands: float32 products, the slow ones, and gradients rounded to ``dtype``.) On a
    CPU with bfloat16 matrix units (AMX) the three n x n by n x d products of a DSC step run several times faster
    in bfloat16 (``benchmarks/speed.py``, step section)."""
    return jnp.matmul(coef.astype(dtype), z.astype(dtype), preferred_element_type=jnp.float32)


def _narrow_product_fwd(coef, z, dtype):
    # the float32 C is kept (it is alive anyway as a parameter), not a rounded n x n copy
    return narrow_product(coef, z, dtype), (coef, z)


def _transposed(a: jax.Array) -> jax.Array:
    """``a.T``; on the CPU stored row-major. XLA otherwise folds a transpose into the product's dimension numbers
    or into its operand's layout, and its CPU bfloat16 products are fast only in the plain row-major form
    (m, k) x (k, n): 3x slower with a transposed operand (1440 x 1440 by 1440 x 3840, the COIL20 step's shape).
    The barrier on the flat array keeps XLA from undoing the copy."""
    if jax.default_backend() != "cpu":
        return a.T
    return jax.lax.optimization_barrier(a.T.reshape(-1)).reshape(a.shape[::-1])


def _narrow_product_bwd(dtype, residuals, g):
    coef, z = residuals
    g = g.astype(dtype)
    d_coef = jnp.matmul(g, _transposed(z.astype(dtype)), preferred_element_type=jnp.float32)
    d_z = jnp.matmul(_transposed(coef.astype(dtype)), g, preferred_element_type=jnp.float32)
    return d_coef.astype(coef.dtype), d_z.astype(z.dtype)


narrow_product.defvjp(_narrow_product_fwd, _narrow_product_bwd)


def _cholesky_inverse(m: jax.Array) -> jax.Array:
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(m), jnp.eye(m.shape[0], dtype=m.dtype))


_one_at_a_time_cholesky_inverse = jax.custom_batching.sequential_vmap(_cholesky_inverse)


@jax.custom_jvp
def spd_inverse(m: jax.Array) -> jax.Array:
    """M^-1 of a symmetric positive definite ``(n, n)`` M, by Cholesky; derivatives from

        d(M^-1) = -M^-1 dM M^-1,

    matrix products only, so of any order (MAML's second-order meta-gradient differentiates it twice).

    Under ``jax.vmap`` the factorisations run one matrix at a time (``jax.custom_batching.sequential_vmap``), not
    as one batched LAPACK call: jaxlib 0.10's batched CPU kernels split their batch over XLA's thread pool and
    block until it is done, and LRSC's meta step, whose episodes are vmapped, hung with every pool thread
    waiting in such a call (2 CPU cores: 7 of 8 small LRSC runs hung; one matrix at a time, 0 of 4).
    """
    return _one_at_a_time_cholesky_inverse(m)


@spd_inverse.defjvp
def _spd_inverse_jvp(primals, tangents):
    (m,), (dm,) = primals, tangents
    inverse = spd_inverse(m)
    return inverse, -inverse @ dm @ inverse


def ridge_coefficients(z: jax.Array, reg: float, *, zero_diagonal: bool = False) -> jax.Array:
    """The exact minimiser of ||Z - C Z||_F^2 + reg ||C||_F^2 over C (least-squares regression, LSR: Lu et al.
    2012), optionally subject to diag(C) = 0. With G = Z Z^T and B = (G + reg I)^-1:

        C = G B = I - reg B                     (no constraint),
        C = I - diag(B)^-1 B                    (diag(C) = 0),

    the second from each row's Lagrangian: row i solves (G + reg I) c = G e_i - m e_i with m fixed by c_i = 0,
    so c = e_i - B e_i / B_ii. Differentiable in Z. For d >= n (LRSC's episodes) B comes from an n x n Cholesky,
    O(n^2 d + n^3). For d < n (a fine-tune's start at large n) from the d x d one of Woodbury's identity,
    O(n^2 d): with P = Z (Z^T Z + reg I_d)^-1 Z^T = I - reg B,

        C = P                                   (no constraint),
        C_ij = P_ij / (1 - P_ii), C_ii = 0      (diag(C) = 0),

    so the only n x n array formed is C itself (no n x n factorisation: at n = 20,000 one would take O(n^3)).

    Args:
      z: ``(n, d)`` latent rows.
      reg: the weight of ||C||_F^2 relative to the self-expression term, > 0.
      zero_diagonal: impose diag(C) = 0.
    """
    if z.ndim != 2:
        raise ValueError(f"z must be (n, d) latent rows, got shape {z.shape}")
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    n, d = z.shape
    if d < n:
        inner = spd_inverse(jnp.matmul(z.T, z, precision=jax.lax.Precision.HIGHEST) + reg * jnp.eye(d, dtype=z.dtype))
        p = jnp.matmul(jnp.matmul(z, 0.5 * (inner + inner.T), precision=jax.lax.Precision.HIGHEST), z.T,
                       precision=jax.lax.Precision.HIGHEST)
        if zero_diagonal:
            return without_diagonal(p) / (1.0 - jnp.diagonal(p))[:, None]
        return p
    eye = jnp.eye(n, dtype=z.dtype)
    gram = jnp.matmul(z, z.T, precision=jax.lax.Precision.HIGHEST)
    b = spd_inverse(gram + reg * eye)
    b = 0.5 * (b + b.T)
    if zero_diagonal:
        return eye - b / jnp.diagonal(b)[:, None]
    return eye - reg * b
