"""Spectral clustering on a precomputed affinity: normalised embedding, then k-means or discretisation."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxsc._src.checks import check_n_clusters, check_square
from jaxsc._src.cluster.eigen import top_eigenpairs
from jaxsc._src.cluster.kmeans import kmeans

ASSIGN_MODES = ("discretize", "kmeans")


def spectral_embedding(affinity: jax.Array, n_clusters: int, eigensolver: str = "eigh",
                       key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Top ``n_clusters`` eigenvectors of M = D^-1/2 W D^-1/2 and sqrt(degrees).

    W is the affinity with its diagonal ignored (as scipy's normalised Laplacian and scikit-learn do),
    D = diag(rowsum W); isolated nodes get degree 1. The top eigenvectors of M are the bottom ones of the
    normalised Laplacian I - M. Returns ``(V (n, K), sqrt_degree (n,))``. ``eigensolver``: ``"eigh"``,
    ``"lobpcg"`` or ``"chebyshev"`` (:func:`jaxsc.cluster.top_eigenpairs` on M + I, whose spectrum lies in
    [0, 2], started from sqrt(D), the top eigenvector of a connected graph, and Gaussian columns from ``key``).
    """
    check_square(affinity, "affinity")
    check_n_clusters(n_clusters, affinity.shape[0])
    w = affinity * (1.0 - jnp.eye(affinity.shape[0], dtype=affinity.dtype))
    degree = jnp.sum(w, axis=1)
    sqrt_degree = jnp.where(degree > 0, jnp.sqrt(degree), 1.0)
    m = w / sqrt_degree[:, None] / sqrt_degree[None, :]
    shifted = 0.5 * (m + m.T) + jnp.eye(m.shape[0], dtype=m.dtype)  # eigenvalues in [0, 2]
    key = jax.random.PRNGKey(0) if key is None else key
    start = jax.random.normal(key, (m.shape[0], n_clusters), m.dtype).at[:, 0].set(sqrt_degree)
    _, vectors = top_eigenpairs(shifted, n_clusters, method=eigensolver, start=start,
                                key=jax.random.fold_in(key, 1), lower=0.0)
    return vectors, sqrt_degree


def _normalize_rows(v: jax.Array) -> jax.Array:
    norms = jnp.linalg.norm(v, axis=1, keepdims=True)
    return v / jnp.where(norms > 0, norms, 1.0)


def discretize(vectors: jax.Array, key: jax.Array, max_iter: int = 20) -> jax.Array:
    """Yu & Shi (2003) discretisation of a spectral embedding (scikit-learn's ``assign_labels='discretize'``).

    Columns are scaled to norm sqrt(n) and rows to unit norm (rows of V); an initial rotation R is built from
    a random row and then, greedily, the rows least aligned with the columns chosen so far. Then alternately
    labels = argmax_k (V R)_ik and R = W U^T from the SVD U S W^T = Y^T V of the indicator matrix Y, until the
    NCut value 2 (n - trace S) stops changing or ``max_iter`` iterations pass.
    """
    n, k = vectors.shape
    v = vectors / jnp.linalg.norm(vectors, axis=0, keepdims=True) * jnp.sqrt(n)
    v = _normalize_rows(v)
    rotation = jnp.zeros((k, k), v.dtype).at[:, 0].set(v[jax.random.randint(key, (), 0, n)])

    def pick(j, carry):
        rotation, c = carry
        c = c + jnp.abs(v @ rotation[:, j - 1])
        return rotation.at[:, j].set(v[jnp.argmin(c)]), c

    rotation, _ = jax.lax.fori_loop(1, k, pick, (rotation, jnp.zeros(n, v.dtype)))
    eps = jnp.finfo(v.dtype).eps * n

    def step(state):
        rotation, last, it, _, _ = state
        labels = jnp.argmax(v @ rotation, axis=1).astype(jnp.int32)
        u, s, wt = jnp.linalg.svd(jax.nn.one_hot(labels, k, dtype=v.dtype).T @ v)
        ncut = 2.0 * (n - jnp.sum(s))
        done = (jnp.abs(ncut - last) < eps) | (it + 1 > max_iter)
        return jnp.where(done, rotation, wt.T @ u.T), ncut, it + 1, done, labels

    state = (rotation, jnp.asarray(0.0, v.dtype), 0, False, jnp.zeros(n, jnp.int32))
    *_, labels = jax.lax.while_loop(lambda s: ~s[3], step, state)
    return labels


@partial(jax.jit, static_argnames=("n_clusters", "assign", "n_init", "eigensolver"))
def spectral_clustering(affinity: jax.Array, n_clusters: int, key: jax.Array, assign: str = "discretize",
                        n_init: int = 10, eigensolver: str = "eigh") -> jax.Array:
    """Labels from a symmetric non-negative affinity.

    ``assign='discretize'``: Yu-Shi discretisation of D^-1/2 V (the reference DSC pipeline, scikit-learn's
    ``SpectralClustering(affinity='precomputed', assign_labels='discretize')``).
    ``assign='kmeans'``: Ng-Jordan-Weiss, k-means (``n_init`` vmapped k-means++ restarts) on the
    row-normalised V. ``eigensolver``: see :func:`spectral_embedding`.
    """
    vectors, sqrt_degree = spectral_embedding(affinity, n_clusters, eigensolver, jax.random.fold_in(key, 1))
    return assign_labels(vectors, sqrt_degree, n_clusters, key, assign, n_init)


def assign_labels(vectors: jax.Array, sqrt_degree: jax.Array, n_clusters: int, key: jax.Array,
                  assign: str = "discretize", n_init: int = 10) -> jax.Array:
    """Labels from a normalised spectral embedding ``V`` (top eigenvectors of D^-1/2 W D^-1/2) and sqrt(D):
    Yu-Shi discretisation of D^-1/2 V, or k-means on the row-normalised V (see :func:`spectral_clustering`)."""
    if assign not in ASSIGN_MODES:
        raise ValueError(f"unknown assign mode {assign!r}; choose one of {ASSIGN_MODES}")
    if assign == "discretize":
        return discretize(vectors / sqrt_degree[:, None], key)
    return kmeans(_normalize_rows(vectors), n_clusters, key, n_init=n_init).labels
