"""The whole cluster stage, coefficients -> labels, in one jitted function."""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsc._src.cluster.affinity import simple_affinity, svd_affinity
from jaxsc._src.cluster.spectral import ASSIGN_MODES, spectral_clustering
from jaxsc._src.cluster.threshold import threshold_coefficients

AFFINITY_MODES = ("svd", "simple")


class PostConfig(NamedTuple):
    """Settings of the cluster stage (hashable, so it is a static argument of the jitted stage).

    Attributes:
      threshold: column mass kept by :func:`threshold_coefficients` (>= 1 keeps all).
      subspace_dim: assumed dimension of each subspace; the SVD keeps ``subspace_dim * K + 1`` triplets.
      power: exponent applied to the non-negative part of U U^T.
      add_identity: use C - diag(C) + I before the SVD (DSC-Net's COIL scripts).
      affinity: ``"svd"`` (SPEC section 2, steps 1-4) or ``"simple"`` ((|C| + |C|^T) / 2).
      assign: ``"discretize"`` (reference) or ``"kmeans"``.
      n_init: k-means restarts when ``assign="kmeans"``.
    """

    threshold: float = 1.0
    subspace_dim: int = 12
    power: float = 8.0
    add_identity: bool = False
    affinity: str = "svd"
    assign: str = "discretize"
    n_init: int = 10

    def validate(self) -> "PostConfig":
        if self.affinity not in AFFINITY_MODES:
            raise ValueError(f"unknown affinity {self.affinity!r}; choose one of {AFFINITY_MODES}")
        if self.assign not in ASSIGN_MODES:
            raise ValueError(f"unknown assign mode {self.assign!r}; choose one of {ASSIGN_MODES}")
        if self.subspace_dim < 1 or self.power <= 0 or self.threshold < 0:
            raise ValueError(f"need subspace_dim >= 1, power > 0, threshold >= 0; got {self}")
        return self


class ClusterResult(NamedTuple):
    """``labels (n,)`` int32 and the ``affinity (n, n)`` they were computed from."""

    labels: jax.Array
    affinity: jax.Array


@partial(jax.jit, static_argnames=("n_clusters", "post"))
def _cluster(coef, n_clusters, post, key):
    if post.affinity == "svd":
        coef = threshold_coefficients(coef, post.threshold)
        affinity = svd_affinity(coef, n_clusters, post.subspace_dim, post.power, post.add_identity)
    else:
        affinity = simple_affinity(coef)
    labels = spectral_clustering(affinity, n_clusters, key, post.assign, post.n_init)
    return ClusterResult(labels.astype(jnp.int32), affinity)


def cluster_coefficients(coef: jax.Array, n_clusters: int, post: PostConfig = PostConfig(),
                         key: jax.Array | None = None) -> ClusterResult:
    """Threshold C, build the affinity and run spectral clustering, all inside one ``jit``.

    Raises:
      ValueError: C not square or not finite, ``n_clusters`` outside 2..n, or a bad ``post``.
    """
    coef = jnp.asarray(coef)
    if coef.ndim != 2 or coef.shape[0] != coef.shape[1]:
        raise ValueError(f"expected a square coefficient matrix, got shape {coef.shape}")
    if not 2 <= n_clusters <= coef.shape[0]:
        raise ValueError(f"n_clusters must lie in 2..n = {coef.shape[0]}, got {n_clusters}")
    if not bool(jnp.all(jnp.isfinite(coef))):
        raise ValueError("the coefficient matrix contains NaN or inf (did training diverge?)")
    key = jax.random.PRNGKey(0) if key is None else key
    return _cluster(coef, int(n_clusters), post.validate(), key)
