"""The cluster stage for large n: no dense eigendecomposition, no dense n x n affinity.

1. Top r singular triplets of S = (C + C^T)/2 by randomized subspace iteration (Halko et al. 2011):
   Q = orth(S^q S Omega), then the small r' x r' eigenproblem of Q^T S Q: O(n^2 r) time, O(n r) extra memory.
2. The EDSC affinity A = max(U U^T, 0)^power kept as a sparse top-k graph: ``neighbors`` largest entries per
   row (self excluded; the spectral stage ignores the diagonal), computed ``block`` rows at a time.
3. Spectral embedding: top K eigenvectors of M = D^-1/2 W D^-1/2 with W = (A + A^T)/2 applied as a sparse
   operator (gathers and a scatter-add), found by LOBPCG on M + I (eigenvalues in [0, 2]).
4. The same assignment (Yu-Shi discretisation or k-means) as the dense stage.

Dense path: O(n^3) time and several n x n copies; this path: O(n^2 r + n k) after C itself.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental.sparse import BCOO
from jax.experimental.sparse.linalg import lobpcg_standard


def randomized_top_subspace(sym: jax.Array, rank: int, key: jax.Array, *, oversample: int = 10,
                            iters: int = 4) -> tuple[jax.Array, jax.Array]:
    """Top ``rank`` singular triplets ``(U, sigma)`` of a symmetric matrix (sigma = |eigenvalue|, descending),
    by ``iters`` steps of randomized subspace iteration with ``oversample`` extra columns."""
    n = sym.shape[0]
    width = min(rank + oversample, n)
    q, _ = jnp.linalg.qr(sym @ jax.random.normal(key, (n, width), sym.dtype))

    def power(_, q):
        return jnp.linalg.qr(sym @ q)[0]

    q = jax.lax.fori_loop(0, iters, power, q)
    evals, evecs = jnp.linalg.eigh(q.T @ (sym @ q))
    top = jnp.argsort(-jnp.abs(evals))[:rank]
    return q @ evecs[:, top], jnp.abs(evals[top])


def topk_affinity(u: jax.Array, power: float, neighbors: int, block: int = 1024) -> tuple[jax.Array, jax.Array]:
    """``(index, value)``, both ``(n, neighbors)``: per row i the largest entries of max(u_i . u_j, 0)^power over
    j != i, computed ``block`` rows at a time (never the dense n x n matrix)."""
    n = u.shape[0]
    pad = (-n) % block
    rows = jnp.arange(n + pad)

    def one_block(start):
        idx = jax.lax.dynamic_slice(rows, (start,), (block,))
        sim = jnp.maximum(u[jnp.minimum(idx, n - 1)] @ u.T, 0.0) ** power
        sim = jnp.where(idx[:, None] == jnp.arange(n)[None, :], -1.0, sim)
        value, index = jax.lax.top_k(sim, neighbors)
        return index, jnp.maximum(value, 0.0)

    index, value = jax.lax.map(one_block, jnp.arange(0, n + pad, block))
    return index.reshape(-1, neighbors)[:n], value.reshape(-1, neighbors)[:n]


def _sym_matvec(index, value, v):
    """W v with W = (A + A^T)/2 and A given row-wise by ``index``/``value``."""
    rows = jnp.repeat(jnp.arange(index.shape[0]), index.shape[1])
    forward = jnp.einsum("nk,nk...->n...", value, v[index])
    backward = jax.ops.segment_sum((value.reshape(-1)[:, None] * v[rows].reshape(rows.shape[0], -1)),
                                   index.reshape(-1), num_segments=index.shape[0]).reshape(v.shape)
    return 0.5 * (forward + backward)


def sparse_spectral_embedding(index: jax.Array, value: jax.Array, n_clusters: int, key: jax.Array,
                              iters: int = 200) -> tuple[jax.Array, jax.Array]:
    """Top ``n_clusters`` eigenvectors of D^-1/2 W D^-1/2 for the sparse W = (A + A^T)/2, by LOBPCG, and
    sqrt(degrees) (isolated nodes get degree 1): the sparse counterpart of
    :func:`jaxsc.cluster.spectral_embedding`."""
    n = index.shape[0]
    degree = _sym_matvec(index, value, jnp.ones((n,), value.dtype))
    sqrt_degree = jnp.where(degree > 0, jnp.sqrt(degree), 1.0)

    def shifted(v):  # (M + I) v, eigenvalues in [0, 2]
        return _sym_matvec(index, value, v / sqrt_degree[:, None]) / sqrt_degree[:, None] + v

    start = jax.random.normal(key, (n, n_clusters), value.dtype).at[:, 0].set(sqrt_degree)
    _, vectors, _ = lobpcg_standard(shifted, start, m=iters)
    return vectors, sqrt_degree


@partial(jax.jit, static_argnames=("n_clusters", "subspace_dim", "power", "add_identity", "neighbors"))
def large_svd_affinity(coef: jax.Array, n_clusters: int, subspace_dim: int, power: float, key: jax.Array,
                       add_identity: bool = False, neighbors: int = 32) -> BCOO:
    """:func:`jaxsc.cluster.svd_affinity` for large n: randomized top subspace and a sparse top-k graph
    (``neighbors`` per row), returned as a BCOO matrix A (not yet symmetrised; W = (A + A^T)/2)."""
    n = coef.shape[0]
    if add_identity:
        coef = coef - jnp.diag(jnp.diagonal(coef)) + jnp.eye(n, dtype=coef.dtype)
    rank = min(subspace_dim * n_clusters + 1, n - 1)
    u, sigma = randomized_top_subspace(0.5 * (coef + coef.T), rank, key)
    u = u * jnp.sqrt(sigma)[None, :]
    norms = jnp.linalg.norm(u, axis=1, keepdims=True)
    u = u / jnp.where(norms > 0, norms, 1.0)
    index, value = topk_affinity(u, power, min(neighbors, n - 1))
    rows = jnp.repeat(jnp.arange(n), index.shape[1])
    return BCOO((value.reshape(-1), jnp.stack([rows, index.reshape(-1)], axis=1)), shape=(n, n))
