"""Plain numpy / scipy / scikit-learn versions of the cluster stage, written from SPEC section 2, the
whole-matrix form of PSSC's contrastive pseudo-graph term and the matrix-product form of RGRL's
relation-weighted reconstruction.

They are the references the jitted stage is tested and benchmarked against: loops where the method is
described as a loop, ``scipy.sparse.linalg.svds`` for the top singular triplets, and scikit-learn's
``SpectralClustering`` for the spectral step, as in the public DSC-Net post-processing.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsc._src.losses.distances import pairwise_sq_euclidean
from jaxsc._src.losses.graph import coefficient_similarity, normalized_adjacency_matmul


def threshold_loop(coef: np.ndarray, threshold: float) -> np.ndarray:
    """Per column, walk the magnitudes in decreasing order, keeping entries until the running sum exceeds
    ``threshold`` times the column's L1 mass (the crossing entry is kept)."""
    if threshold >= 1:
        return coef.copy()
    out = np.zeros_like(coef)
    for j in range(coef.shape[1]):
        column = coef[:, j]
        order = np.argsort(-np.abs(column), kind="stable")
        total = np.abs(column).sum()
        running = 0.0
        for i in order:
            out[i, j] = column[i]
            running += abs(column[i])
            if running > threshold * total:
                break
    return out


def svd_affinity_reference(coef: np.ndarray, n_clusters: int, subspace_dim: int, power: float,
                           add_identity: bool = False) -> np.ndarray:
    from scipy.sparse.linalg import svds
    from sklearn.preprocessing import normalize

    n = coef.shape[0]
    if add_identity:
        coef = coef - np.diag(np.diag(coef)) + np.eye(n)
    sym = 0.5 * (coef + coef.T)
    rank = min(subspace_dim * n_clusters + 1, n - 1)
    u, s, _ = svds(sym.astype(np.float64), rank, v0=np.ones(n))
    order = np.argsort(-s)
    u = normalize(u[:, order] * np.sqrt(s[order]), norm="l2", axis=1)
    z = u @ u.T
    a = np.abs(np.where(z > 0, z, 0.0) ** power)
    a = a / a.max()
    return 0.5 * (a + a.T)


def spectral_reference(affinity: np.ndarray, n_clusters: int, assign: str = "discretize",
                       seed: int = 0) -> np.ndarray:
    from sklearn.cluster import SpectralClustering

    model = SpectralClustering(n_clusters=n_clusters, affinity="precomputed", assign_labels=assign,
                               eigen_solver="arpack", random_state=seed)
    return model.fit_predict(affinity)


def cluster_reference(coef: np.ndarray, n_clusters: int, threshold: float, subspace_dim: int, power: float,
                      add_identity: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The reference pipeline: loop threshold, svds affinity, scikit-learn spectral clustering."""
    affinity = svd_affinity_reference(threshold_loop(coef, threshold), n_clusters, subspace_dim, power,
                                      add_identity)
    return spectral_reference(affinity, n_clusters, seed=seed), affinity


def pseudo_graph_contrastive_whole(probs: jax.Array, similarity: jax.Array, margin: float = 1.0) -> jax.Array:
    """``jaxsc.losses.pseudo_graph_contrastive`` on whole n x n matrices, differentiated by autodiff (jaxsc's form
    until 2026-12-06; the blocked custom VJP is tested and benchmarked against it):
    (1/n) sum_ij [S_ij d_ij^2 + (1 - S_ij) max(0, margin - d_ij)^2], d_ij^2 by the Gram expansion clipped at 0."""
    sq = pairwise_sq_euclidean(probs)
    positive = sq > 1e-12
    dist = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    pairs = similarity * sq + (1.0 - similarity) * jnp.square(jax.nn.relu(margin - dist))
    return jnp.sum(pairs) / probs.shape[0]


def laplacian_reconstruction_matmul(x: jax.Array, x_hat: jax.Array, coef: jax.Array, *,
                                    self_loops: bool = True) -> jax.Array:
    """``jaxsc.losses.laplacian_reconstruction_loss`` as W X_hat differentiated by autodiff (jaxsc's form until
    2026-12-06; the Gram-matrix custom VJP is tested and benchmarked against it):
    ||X - X_hat||^2 + 2 (tr(X^T X_hat) - tr(X^T W X_hat)), W = D^-1/2 (S [+ I]) D^-1/2."""
    x, x_hat = x.reshape(x.shape[0], -1), x_hat.reshape(x_hat.shape[0], -1)
    w_x_hat = normalized_adjacency_matmul(coefficient_similarity(coef), x_hat, self_loops=self_loops)
    return jnp.sum(jnp.square(x - x_hat)) + 2.0 * (jnp.sum(x * x_hat) - jnp.sum(x * w_x_hat))
