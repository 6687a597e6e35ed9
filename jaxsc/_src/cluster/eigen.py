"""Top eigenpairs of a dense symmetric matrix: ``eigh``, or LOBPCG checked by its residuals.

The spectral embedding needs only the top K eigenvectors of the n x n normalised affinity. ``eigh`` computes
all n in O(n^3); LOBPCG (Knyazev 2001) computes k of them with O(n^2 k) work per iteration. Its answer is accepted
only when every returned pair satisfies

    ||M u - lambda u||_2 <= rtol * max_i |lambda_i|,

checked with one extra product; otherwise the same call falls back to ``eigh`` (``lax.cond``: the dense solve
runs only when needed). LOBPCG needs 5 k < n; smaller problems always use ``eigh``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental.sparse.linalg import lobpcg_standard

EIGENSOLVERS = ("eigh", "lobpcg")


def _dense_top(matrix: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    evals, evecs = jnp.linalg.eigh(matrix)
    return evals[::-1][:k], evecs[:, ::-1][:, :k]


def top_eigenpairs(matrix: jax.Array, k: int, *, method: str = "eigh", key: jax.Array | None = None,
                   start: jax.Array | None = None, iters: int = 100,
                   rtol: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """The ``k`` eigenpairs ``(values (k,), vectors (n, k))`` of the symmetric ``matrix`` with the largest
    eigenvalues, in decreasing order.

    ``method="lobpcg"``: at most ``iters`` LOBPCG iterations from ``start`` (default: Gaussian columns from
    ``key``), accepted when the residual test of the module docstring passes, else ``eigh``.
    """
    if method not in EIGENSOLVERS:
        raise ValueError(f"unknown eigensolver {method!r}; choose one of {EIGENSOLVERS}")
    n = matrix.shape[0]
    if method == "eigh" or 5 * k >= n:
        return _dense_top(matrix, k)
    if start is None:
        key = jax.random.PRNGKey(0) if key is None else key
        start = jax.random.normal(key, (n, k), matrix.dtype)
    # LOBPCG's own stop (residual < tol * 10 n (lambda + |M v|)) with tol chosen so that it stops near the
    # acceptance bound instead of far above it (its default, float epsilon, allows residuals ~ 1e-7 n).
    tol = rtol / (20.0 * n)
    _, vectors, _ = lobpcg_standard(matrix, start, m=iters, tol=tol)
    image = matrix @ vectors
    values = jnp.sum(vectors * image, axis=0)  # Rayleigh quotients
    residual = jnp.linalg.norm(image - vectors * values[None, :], axis=0)
    accepted = jnp.all(residual <= rtol * jnp.max(jnp.abs(values)))
    order = jnp.argsort(-values)
    return jax.lax.cond(accepted, lambda: (values[order], vectors[:, order]), lambda: _dense_top(matrix, k))
