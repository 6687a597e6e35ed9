"""Top eigenpairs of a symmetric matrix: ``eigh``, or an iterative solver checked by its residuals.

The spectral embedding needs only the top K eigenvectors of the n x n normalised affinity. ``eigh`` computes
all n in O(n^3). Two iterative solvers compute k of them from products of the matrix by an n x k block:
LOBPCG (Knyazev 2001), one product and a Rayleigh-Ritz problem of size 3k per iteration, and Chebyshev-filtered
subspace iteration (Zhou & Saad 2007), ``degree`` products per Rayleigh-Ritz problem of size k, which needs a
lower bound of the spectrum. An iterative answer is accepted only when its pairs (u_i, theta_i), i <= k, satisfy

    ||M u_i - theta_i u_i||_2 <= rtol * max_j |theta_j|               for every i, and
    ||R||_F / (theta_k - theta_k+1) <= max_angle,                     R = M U - U diag(theta),

checked with one extra product, theta_k+1 being the largest Ritz value of the guard columns. The second is the
Davis-Kahan sin(Theta) bound on the angle between span(U) and the exact top-k eigenspace, with the gap estimated
from Ritz values (theta_k+1 <= lambda_k+1: the estimate is exact only once the guard columns have converged,
which nothing checks). When eigenvalue k is close to k+1, small residuals alone allow a U that mixes
eigenvectors from both sides of the cut (a trained COIL20 C's spectral embedding, theta_k - theta_k+1 = 5e-4,
passed rtol = 1e-3 and gave other labels than eigh's: ``benchmarks/results/solver_agreement.md``). Otherwise the
same call falls back to ``eigh`` (``lax.cond``: the dense solve runs only when needed). The iterative solvers
need 5 (k + GUARD) < n; smaller problems always use ``eigh``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

EIGENSOLVERS = ("eigh", "lobpcg", "chebyshev")
GUARD = 4  # extra LOBPCG columns: 19 instead of 29 iterations on the n = 1440 speed benchmark's embedding
MAX_ANGLE = 1e-2  # the largest Davis-Kahan angle bound with which an iterative embedding is used without notice
_HIGHEST = jax.lax.Precision.HIGHEST


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


def _unit_columns(v: jax.Array) -> tuple[jax.Array, jax.Array]:
    norms = jnp.linalg.norm(v, axis=0)
    return v / jnp.where(norms > 0, norms, 1.0)[None, :], norms


class EigenResult(NamedTuple):
    """``values (k,)`` descending, orthonormal ``vectors (n, k)``, ``iterations`` run, ``residual``: the
    largest ||M v - lambda v|| / max |lambda| over the wanted pairs, and ``angle_bound``: ||R||_F / (lambda_w -
    lambda_w+1) over the w wanted pairs (inf without guard columns or gap), both from the tracked products M V.
    Returned by :func:`lobpcg` and :func:`chebyshev_subspace`."""

    values: jax.Array
    vectors: jax.Array
    iterations: jax.Array
    residual: jax.Array
    angle_bound: jax.Array


def _convergence(x, ax, theta, wanted):
    """``(residual, angle_bound)`` of :class:`EigenResult` for the first ``wanted`` Ritz pairs (x, theta)."""
    norms = jnp.linalg.norm(ax[:, :wanted] - x[:, :wanted] * theta[None, :wanted], axis=0)
    residual = jnp.max(norms) / jnp.max(jnp.abs(theta[:wanted]))
    if wanted == theta.shape[0]:
        return residual, jnp.asarray(jnp.inf, residual.dtype)
    gap = theta[wanted - 1] - theta[wanted]
    return residual, jnp.where(gap > 0, jnp.linalg.norm(norms) / jnp.where(gap > 0, gap, 1.0), jnp.inf)


def _not_converged(residual, angle_bound, rtol, max_angle):
    return (residual > rtol) | (angle_bound > max_angle)


def _rayleigh_ritz(basis, image, k, drop):
    """The top ``k`` Ritz pairs of M on span(basis) given ``image = M basis``: coefficients ``(m, k)`` and values.

    The basis is orthonormalised through the eigendecomposition of its Gram matrix G = V diag(l) V^T (directions
    with l <= drop * max(l), i.e. numerically dependent columns, are dropped), then the projected problem
    T^T (basis^T M basis) T with T = V diag(l^-1/2) is solved by ``eigh``.
    """
    gram = _mm(basis.T, basis)
    projected = _mm(basis.T, image)
    projected = 0.5 * (projected + projected.T)
    lam, v = jnp.linalg.eigh(gram)
    keep = lam > drop * lam[-1]
    t = v * jnp.where(keep, jax.lax.rsqrt(jnp.where(keep, lam, 1.0)), 0.0)[None, :]
    small = _mm(t.T, _mm(projected, t))
    # Dropped directions are zero columns of T: push their (zero) Ritz values below every real one.
    small = small - jnp.diag(jnp.where(keep, 0.0, 2.0 * jnp.max(jnp.abs(small)) + 1.0))
    mu, y = jnp.linalg.eigh(small)
    return _mm(t, y[:, ::-1][:, :k]), mu[::-1][:k]


def lobpcg(matvec: Callable[[jax.Array], jax.Array], start: jax.Array, *, iters: int = 100,
           rtol: float = 1e-3, drop: float = 1e-5, wanted: int | None = None,
           max_angle: float = float("inf")) -> EigenResult:
    """Top-k eigenpairs of a symmetric operator by LOBPCG (Knyazev 2001), one ``matvec`` of an n x k block per
    iteration.

    X holds the current Ritz vectors, R = M X - X diag(theta) the residuals (projected off X), P the previous
    update direction; each iteration solves the Rayleigh-Ritz problem on span(X, R, P) and keeps the top k
    pairs. M X and M P are carried along as linear combinations, so only M R is computed. Stops after ``iters``
    iterations or when the residuals ||M x - theta x|| of the first ``wanted`` pairs (default all k) are
    <= rtol * max |theta|. ``start``: (n, k) initial block; columns past ``wanted`` are guard vectors, which
    speed up convergence when the wanted eigenvalues are not well separated from the next ones.
    """
    n, k = start.shape
    wanted = k if wanted is None else wanted
    x, _ = jnp.linalg.qr(start)
    ax = matvec(x)
    coeff, theta = _rayleigh_ritz(x, ax, k, drop)
    x, ax = _mm(x, coeff), _mm(ax, coeff)

    def body(state):
        i, x, ax, theta, p, ap, _ = state
        r = ax - x * theta[None, :]
        r, _ = _unit_columns(r - _mm(x, _mm(x.T, r)))
        basis = jnp.concatenate([x, r, p], axis=1)
        image = jnp.concatenate([ax, matvec(r), ap], axis=1)
        coeff, theta = _rayleigh_ritz(basis, image, k, drop)
        x, ax = _mm(basis, coeff), _mm(image, coeff)
        update = coeff.at[:k].set(0.0)  # the R and P parts: the new search direction
        p, norms = _unit_columns(_mm(basis, update))
        ap = _mm(image, update) / jnp.where(norms > 0, norms, 1.0)[None, :]
        return i + 1, x, ax, theta, p, ap, _convergence(x, ax, theta, wanted)

    zeros = jnp.zeros_like(x)
    state = (jnp.asarray(0), x, ax, theta, zeros, zeros, _convergence(x, ax, theta, wanted))
    i, x, _, theta, _, _, measures = jax.lax.while_loop(
        lambda s: (s[0] < iters) & _not_converged(*s[6], rtol, max_angle), body, state)
    return EigenResult(theta, x, i, *measures)


def chebyshev_subspace(matvec: Callable[[jax.Array], jax.Array], start: jax.Array, lower, *, degree: int = 6,
                       iters: int = 30, rtol: float = 1e-3, drop: float = 1e-5, wanted: int | None = None,
                       max_angle: float = float("inf")) -> EigenResult:
    """Top-k eigenpairs of a symmetric operator with spectrum in [``lower``, inf) by Chebyshev-filtered subspace
    iteration (Zhou & Saad 2007): each iteration applies p(M) = T_m((M - c I) / e) of degree m = ``degree`` to
    the block X, with [c - e, c + e] = [lower, theta_k], theta_k the smallest current Ritz value, then solves the
    Rayleigh-Ritz problem on span(p(M) X).

    T_m is bounded by 1 on [lower, theta_k] and grows like cosh(m acosh x) above it, so eigenvalues above the
    cut are amplified against those below: the optimal polynomial of its degree for that ratio. The three-term
    recurrence Y_{j+1} = 2 (M Y_j - c Y_j) / e - Y_{j-1} costs one ``matvec`` of an n x k block per degree and
    no small dense problems; its pairs of columns are rescaled together (the filter is linear per column), so
    nothing overflows. The filtered block is orthonormalised by Householder QR before the Rayleigh-Ritz step
    (its columns all lean towards the top eigenvector). Stops after ``iters`` iterations or when the residuals
    of the first ``wanted`` pairs (default all k) are <= rtol * max |theta| and their ``angle_bound``
    (:class:`EigenResult`) is <= ``max_angle``; the columns past ``wanted`` are guard vectors.
    """
    n, k = start.shape
    wanted = k if wanted is None else wanted
    x, _ = jnp.linalg.qr(start)
    coeff, theta = _rayleigh_ritz(x, matvec(x), k, drop)
    x = _mm(x, coeff)
    ax = matvec(x)

    def body(state):
        i, x, ax, theta, _ = state
        half_width = jnp.maximum(0.5 * (theta[-1] - lower), jnp.finfo(x.dtype).eps * jnp.max(jnp.abs(theta)))
        centre = lower + half_width

        def recur(_, pair):
            previous, current = pair
            following = 2.0 * (matvec(current) - centre * current) / half_width - previous
            _, norms = _unit_columns(following)
            scale = 1.0 / jnp.where(norms > 0, norms, 1.0)[None, :]
            return current * scale, following * scale

        _, y = jax.lax.fori_loop(1, degree, recur, (x, (ax - centre * x) / half_width))
        q, _ = jnp.linalg.qr(y)  # the filtered columns lean towards the top eigenvector: orthonormalise first
        aq = matvec(q)
        coeff, theta = _rayleigh_ritz(q, aq, k, drop)
        x, ax = _mm(q, coeff), _mm(aq, coeff)
        return i + 1, x, ax, theta, _convergence(x, ax, theta, wanted)

    state = (jnp.asarray(0), x, ax, theta, _convergence(x, ax, theta, wanted))
    i, x, _, theta, measures = jax.lax.while_loop(
        lambda s: (s[0] < iters) & _not_converged(*s[4], rtol, max_angle), body, state)
    return EigenResult(theta, x, i, *measures)


def _dense_top(matrix: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    evals, evecs = jnp.linalg.eigh(matrix)
    return evals[::-1][:k], evecs[:, ::-1][:, :k]


def gershgorin_lower_bound(matrix: jax.Array) -> jax.Array:
    """min_i (M_ii - sum_{j != i} |M_ij|), a lower bound of the eigenvalues of a symmetric M (Gershgorin)."""
    diagonal = jnp.diagonal(matrix)
    return jnp.min(diagonal + jnp.abs(diagonal) - jnp.sum(jnp.abs(matrix), axis=1))


def top_eigenpairs(matrix: jax.Array, k: int, *, method: str = "eigh", key: jax.Array | None = None,
                   start: jax.Array | None = None, iters: int = 100, rtol: float = 1e-3, max_angle: float = MAX_ANGLE,
                   lower=None, degree: int = 6) -> tuple[jax.Array, jax.Array]:
    """The ``k`` eigenpairs ``(values (k,), vectors (n, k))`` of the symmetric ``matrix`` with the largest
    eigenvalues, in decreasing order.

    ``method="lobpcg"`` or ``"chebyshev"``: :func:`lobpcg` or :func:`chebyshev_subspace` from ``start``
    (default: Gaussian columns from ``key``) with ``GUARD`` extra Gaussian columns, using at most about ``iters``
    products of the matrix by the block (LOBPCG iterations; Chebyshev passes of ``degree`` products), accepted
    when both tests of the module docstring pass (``rtol``, ``max_angle``; recomputed with the true product
    M V), else ``eigh``. ``lower``: a lower bound of the spectrum for ``"chebyshev"`` (default:
    :func:`gershgorin_lower_bound`).
    """
    if method not in EIGENSOLVERS:
        raise ValueError(f"unknown eigensolver {method!r}; choose one of {EIGENSOLVERS}")
    n = matrix.shape[0]
    if method == "eigh" or 5 * (k + GUARD) >= n:
        return _dense_top(matrix, k)
    key = jax.random.PRNGKey(0) if key is None else key
    extra = jax.random.normal(key, (n, k + GUARD), matrix.dtype)
    start = extra if start is None else jnp.concatenate([start, extra[:, k:]], axis=1)
    margins = dict(rtol=0.5 * rtol, max_angle=0.5 * max_angle, wanted=k)
    if method == "lobpcg":
        result = lobpcg(lambda v: _mm(matrix, v), start, iters=iters, **margins)
    else:
        lower = gershgorin_lower_bound(matrix) if lower is None else lower
        result = chebyshev_subspace(lambda v: _mm(matrix, v), start, lower, degree=degree,
                                    iters=max(iters // degree, 1), **margins)
    vectors = result.vectors[:, :k]
    image = _mm(matrix, vectors)
    values = jnp.sum(vectors * image, axis=0)  # Rayleigh quotients
    order = jnp.argsort(-values)
    values, vectors, image = values[order], vectors[:, order], image[:, order]
    residual, angle_bound = _convergence(vectors, image, jnp.append(values, result.values[k]), k)
    accepted = (residual <= rtol) & (angle_bound <= max_angle)
    return jax.lax.cond(accepted, lambda: (values, vectors), lambda: _dense_top(matrix, k))
