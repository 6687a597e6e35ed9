"""k-means with k-means++ seeding and restarts vmapped in one jitted call."""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp


class KMeansResult(NamedTuple):
    """Output of :func:`kmeans`: ``labels (n,)``, ``centers (k, d)``, ``inertia`` (sum of squared distances to
    the assigned centres) and ``n_iter`` (Lloyd iterations of the kept restart)."""

    labels: jax.Array
    centers: jax.Array
    inertia: jax.Array
    n_iter: jax.Array


def squared_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
    """D_ij = ||x_i - c_j||^2 = ||x_i||^2 - 2 x_i.c_j + ||c_j||^2, clipped at 0."""
    d = jnp.sum(x * x, 1)[:, None] - 2.0 * x @ centers.T + jnp.sum(centers * centers, 1)[None, :]
    return jnp.maximum(d, 0.0)


def _check_data_and_k(x: jax.Array, k: int) -> None:
    if x.ndim != 2:
        raise ValueError(f"k-means expects (n, d) data, got shape {x.shape}")
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k-means needs 1 <= k <= n, got k={k} for n={x.shape[0]}")


@partial(jax.jit, static_argnames=("k",))
def kmeans_plus_plus(x: jax.Array, k: int, key: jax.Array) -> jax.Array:
    """k-means++ seeding: the first centre uniformly, each next one with probability proportional to the
    squared distance to the nearest chosen centre."""
    _check_data_and_k(x, k)
    n = x.shape[0]
    key, first = jax.random.split(key)
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[jax.random.randint(first, (), 0, n)])
    nearest = squared_distances(x, centers[:1])[:, 0]

    def add(i, carry):
        centers, nearest = carry
        logits = jnp.log(nearest + jnp.finfo(x.dtype).tiny)
        chosen = x[jax.random.categorical(jax.random.fold_in(key, i), logits)]
        nearest = jnp.minimum(nearest, jnp.sum(jnp.square(x - chosen), 1))
        return centers.at[i].set(chosen), nearest

    centers, _ = jax.lax.fori_loop(1, k, add, (centers, nearest))
    return centers


def _lloyd(x: jax.Array, centers: jax.Array, max_iter: int, tol: float):
    k = centers.shape[0]

    def step(state):
        centers, _, it = state
        labels = jnp.argmin(squared_distances(x, centers), 1)
        onehot = jax.nn.one_hot(labels, k, dtype=x.dtype)
        counts = onehot.sum(0)
        means = (onehot.T @ x) / jnp.maximum(counts, 1.0)[:, None]
        new = jnp.where(counts[:, None] > 0, means, centers)  # an empty cluster keeps its centre
        return new, jnp.sum(jnp.square(new - centers)), it + 1

    def running(state):
        _, shift, it = state
        return (it < max_iter) & (shift > tol)

    centers, _, n_iter = jax.lax.while_loop(running, step, (centers, jnp.inf, 0))
    dist = squared_distances(x, centers)
    labels = jnp.argmin(dist, 1)
    return KMeansResult(labels, centers, jnp.sum(jnp.min(dist, 1)), n_iter)


@partial(jax.jit, static_argnames=("k", "n_init", "max_iter"))
def kmeans(x: jax.Array, k: int, key: jax.Array, n_init: int = 10, max_iter: int = 300,
           tol: float = 1e-4) -> KMeansResult:
    """Lloyd's k-means from ``n_init`` k-means++ seedings run side by side (``vmap``); the restart with the
    lowest inertia sum_i min_j ||x_i - c_j||^2 is returned.

    ``tol`` is relative, as in scikit-learn: iterations stop when the squared centre shift falls below
    ``tol * mean(var(x, axis=0))``.
    """
    _check_data_and_k(x, k)
    abs_tol = tol * jnp.mean(jnp.var(x, axis=0))

    def restart(key):
        return _lloyd(x, kmeans_plus_plus(x, k, key), max_iter, abs_tol)

    runs = jax.vmap(restart)(jax.random.split(key, n_init))
    best = jnp.argmin(runs.inertia)
    return jax.tree.map(lambda leaf: leaf[best], runs)
