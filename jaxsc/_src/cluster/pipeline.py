"""The whole cluster stage, coefficients -> labels, in one jitted function, which can also be compiled ahead of
time in a background thread (:func:`compile_cluster_stage`)."""
from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsc._src.checks import check_n_clusters, check_square
from jaxsc._src.cluster.affinity import simple_affinity, svd_affinity
from jaxsc._src.cluster.blas_threads import on_cpu, single_blas_thread
from jaxsc._src.cluster.eigen import MAX_ANGLE
from jaxsc._src.cluster.large import large_svd_affinity, sparse_spectral_embedding
from jaxsc._src.cluster.spectral import ASSIGN_MODES, assign_labels, spectral_clustering
from jaxsc._src.cluster.threshold import threshold_coefficients
from jaxsc._src.compile_ahead import CompiledAhead

AFFINITY_MODES = ("svd", "simple")
SOLVERS = ("auto", "dense", "randomized", "iterative")
LARGE_N = 4000  # above this, solver="auto" uses the iterative path


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
      solver: ``"dense"`` (eigh of S and of the n x n affinity), ``"randomized"`` (the top singular vectors of S
        by randomized subspace iteration, approximate; the dense affinity; its top K eigenvectors by
        Chebyshev-filtered subspace iteration, accepted only when its residuals and its Davis-Kahan angle
        bound pass, else eigh: :func:`jaxsc.cluster.top_eigenpairs`; on a trained COIL20 C, labels at ARI
        0.995-0.997 to the dense solver's over 3 keys: :func:`jaxsc.cluster.randomized_top_subspace`),
        ``"iterative"`` (randomized SVD, a sparse top-k affinity and Chebyshev-filtered subspace iteration:
        :mod:`jaxsc.cluster.large`; svd affinity only; approximate: on the C of mnist-test's large-scale path,
        labels at ARI 0.61-0.84 to the dense solver's, its sparse graph being another affinity,
        ``benchmarks/results/iterative_agreement.md``), or ``"auto"``: iterative when n > ``LARGE_N``, else
        dense.
      neighbors: entries kept per row of the affinity by the iterative solver.
    """

    threshold: float = 1.0
    subspace_dim: int = 12
    power: float = 8.0
    add_identity: bool = False
    affinity: str = "svd"
    assign: str = "discretize"
    n_init: int = 10
    solver: str = "dense"
    neighbors: int = 32

    def validate(self) -> "PostConfig":
        """``self``, or a ``ValueError`` naming the bad field."""
        if self.affinity not in AFFINITY_MODES:
            raise ValueError(f"unknown affinity {self.affinity!r}; choose one of {AFFINITY_MODES}")
        if self.assign not in ASSIGN_MODES:
            raise ValueError(f"unknown assign mode {self.assign!r}; choose one of {ASSIGN_MODES}")
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of {SOLVERS}")
        if self.subspace_dim < 1 or self.power <= 0 or self.threshold < 0:
            raise ValueError(f"need subspace_dim >= 1, power > 0, threshold >= 0; got {self}")
        return self


class ClusterResult(NamedTuple):
    """``labels (n,)`` int32 and the affinity they were computed from: a dense ``(n, n)`` array, or with the
    iterative solver a sparse top-k BCOO matrix A (the spectral stage uses (A + A^T)/2). ``angle_bound``: with
    the iterative solver, the Davis-Kahan bound on the angle between its spectral embedding and the exact
    top-K eigenvectors (:class:`jaxsc.cluster.EigenResult`); None with the dense and randomized solvers, whose
    embeddings are eigh's or pass that test (:func:`jaxsc.cluster.top_eigenpairs`)."""

    labels: jax.Array
    affinity: jax.Array
    angle_bound: jax.Array | None = None


def _uses_iterative_path(post: PostConfig, n: int) -> bool:
    return post.affinity == "svd" and (post.solver == "iterative" or (post.solver == "auto" and n > LARGE_N))


def subspace_key(key: jax.Array) -> jax.Array:
    """The key from which the randomized solver draws its top singular subspace, given the stage's ``key``."""
    return jax.random.fold_in(key, 2)


@partial(jax.jit, static_argnames=("n_clusters", "post"))
def _cluster(coef, n_clusters, post, key):
    n = coef.shape[0]
    if _uses_iterative_path(post, n):
        svd_key, eig_key, assign_key = jax.random.split(key, 3)
        graph = large_svd_affinity(threshold_coefficients(coef, post.threshold), n_clusters, post.subspace_dim,
                                   post.power, svd_key, post.add_identity, post.neighbors)
        index, value = graph.indices[:, 1].reshape(n, -1), graph.data.reshape(n, -1)
        embedding = sparse_spectral_embedding(index, value, n_clusters, eig_key)
        labels = assign_labels(embedding.vectors, embedding.sqrt_degree, n_clusters, assign_key, post.assign,
                               post.n_init)
        return ClusterResult(labels.astype(jnp.int32), graph, embedding.eigen.angle_bound)
    fast = post.solver == "randomized"
    if post.affinity == "svd":
        coef = threshold_coefficients(coef, post.threshold)
        affinity = svd_affinity(coef, n_clusters, post.subspace_dim, post.power, post.add_identity,
                                subspace="randomized" if fast else "eigh", key=subspace_key(key))
    else:
        affinity = simple_affinity(coef)
    labels = spectral_clustering(affinity, n_clusters, key, post.assign, post.n_init,
                                 "chebyshev" if fast else "eigh")
    return ClusterResult(labels.astype(jnp.int32), affinity)


def compile_cluster_stage(n: int, n_clusters: int, post: PostConfig = PostConfig(),
                          dtype=jnp.float32) -> CompiledAhead:
    """The cluster stage for an ``(n, n)`` C of ``dtype`` on the default device, with ``n_clusters`` and ``post``
    fixed, compiled in a background thread (:class:`jaxsc._src.compile_ahead.CompiledAhead`; about 1 s at n = 400
    on 2 CPU cores), for :func:`cluster_coefficients`'s ``compiled``: :func:`jaxsc.run` starts it before the
    fine-tune, so that the two overlap."""
    check_n_clusters(n_clusters, n)
    return CompiledAhead(_cluster, dict(coef=jax.ShapeDtypeStruct((n, n), jnp.dtype(dtype)),
                                        key=jax.random.PRNGKey(0)), n_clusters=int(n_clusters), post=post.validate())


def cluster_coefficients(coef: jax.Array, n_clusters: int, post: PostConfig = PostConfig(),
                         key: jax.Array | None = None, *,
                         compiled: CompiledAhead | None = None) -> ClusterResult:
    """Threshold C, build the affinity and run spectral clustering, all inside one ``jit``.

    On the CPU, the randomized and iterative solvers run with one BLAS thread and the call returns finished
    results (:mod:`jaxsc._src.cluster.blas_threads`: OpenBLAS's idle threads otherwise slow XLA's products down,
    about 1.8x on 2 cores at n = 1440); elsewhere the results are dispatched asynchronously, as usual, except
    the iterative solver's, whose angle bound is read back: a ``RuntimeWarning`` when it exceeds ``MAX_ANGLE``
    (:class:`ClusterResult`).
    ``compiled``: the stage from :func:`compile_cluster_stage`, run when it was compiled for this call (C's
    shape, dtype and device, the key's type, ``n_clusters``, ``post``); otherwise the jitted stage runs.

    Raises:
      ValueError: C not square or not finite, ``n_clusters`` outside 2..n, or a bad ``post``.
    """
    coef = jnp.asarray(coef)
    check_square(coef)
    check_n_clusters(n_clusters, coef.shape[0])
    if not bool(jnp.all(jnp.isfinite(coef))):
        raise ValueError("the coefficient matrix contains NaN or inf (did training diverge?)")
    key = jax.random.PRNGKey(0) if key is None else key
    post = post.validate()
    static = dict(n_clusters=int(n_clusters), post=post)
    serves = compiled is not None and compiled.serves(_cluster, **static)
    stage = compiled if serves else partial(_cluster, **static)
    if (post.solver == "randomized" or _uses_iterative_path(post, coef.shape[0])) and on_cpu(coef):
        with single_blas_thread():
            result = jax.block_until_ready(stage(coef=coef, key=key))
    else:
        result = stage(coef=coef, key=key)
    _warn_if_embedding_inexact(result)
    return result


def _warn_if_embedding_inexact(result: ClusterResult) -> None:
    """A ``RuntimeWarning`` when the iterative solver's embedding failed the angle test (reads the bound back)."""
    if result.angle_bound is None:
        return
    bound = float(result.angle_bound)
    if not bound <= MAX_ANGLE:
        warnings.warn(f"the iterative cluster stage's spectral embedding is inexact: its Davis-Kahan angle bound "
                      f"{bound:.3g} exceeds {MAX_ANGLE} (eigenvalues K and K+1 of the normalised affinity are close"
                      f" or the iteration stopped early), so its labels may differ from the dense solver's; "
                      f"solver='dense' computes the embedding exactly (n x n memory)", RuntimeWarning, stacklevel=3)
