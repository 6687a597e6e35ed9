"""The large-n cluster path against the dense one."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsc import cluster, data, metrics
from jaxsc._src.cluster import pipeline


def _lsr_coef(n_per=60, k=4, seed=0):
    ds = data.union_of_subspaces(n_subspaces=k, dim=3, ambient_dim=40, n_per_subspace=n_per, noise=0.05,
                                 seed=seed)
    gram = ds.x @ ds.x.T
    return ds, np.linalg.solve(gram + 0.1 * np.eye(len(gram)), gram).astype(np.float32)


def _projector(u):
    q, _ = np.linalg.qr(np.asarray(u, np.float64))
    return q @ q.T


def test_randomized_subspace_matches_eigh():
    _, coef = _lsr_coef()
    sym = jnp.asarray(0.5 * (coef + coef.T))
    u, sigma = cluster.randomized_top_subspace(sym, 13, jax.random.PRNGKey(0))
    u_ref, sigma_ref = cluster.top_singular_subspace(sym, 13)
    np.testing.assert_allclose(sigma[:12], sigma_ref[:12], rtol=1e-4)  # the 12 = 4 x 3 signal directions
    np.testing.assert_allclose(sigma[12], sigma_ref[12], rtol=3e-2)  # the first noise direction, past the gap
    assert np.abs(_projector(u[:, :12]) - _projector(u_ref[:, :12])).max() < 1e-3


def _with_spectrum(spectrum, seed=3):
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(spectrum), len(spectrum))))
    return basis, jnp.asarray((basis * spectrum) @ basis.T, jnp.float32)


def test_randomized_subspace_shift_finds_top_subspace_above_a_flat_bulk():
    # S = I + B as with C - diag(C) + I: top 6 eigenvalues 1.5, the bulk in [0.8, 1.2]. Unshifted power steps
    # separate 1.5 from 1.2 slowly; shifted to the lowest end, 1.5 - 0.8 against 1.2 - 0.8.
    basis, sym = _with_spectrum(np.concatenate([np.full(6, 1.5), np.linspace(1.2, 0.8, 294)]))
    u, sigma = cluster.randomized_top_subspace(sym, 6, jax.random.PRNGKey(0), iters=8)
    np.testing.assert_allclose(sigma, 1.5, rtol=1e-3)
    assert np.abs(_projector(u) - _projector(basis[:, :6])).max() < 1e-2


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_randomized_subspace_of_a_skewed_one_signed_spectrum(sign):
    # A trained COIL20 C looks like this: the wanted eigenvalues a little above a bulk near 1, a tail below it.
    # The mean (0.915) is no valid shift: |0.5 - 0.915| > |1.3 - 0.915| would rank the tail first.
    spectrum = np.concatenate([np.linspace(1.4, 1.3, 10), np.linspace(1.0, 0.98, 200), np.linspace(0.9, 0.5, 90)])
    basis, sym = _with_spectrum(sign * spectrum)
    u, sigma = cluster.randomized_top_subspace(sym, 10, jax.random.PRNGKey(0), iters=8)
    np.testing.assert_allclose(sigma, spectrum[:10], rtol=5e-3)
    assert np.abs(_projector(u) - _projector(basis[:, :10])).max() < 2e-2


def test_randomized_subspace_of_a_spectrum_of_both_signs_ranks_by_magnitude():
    spectrum = np.concatenate([[2.0, -1.9, 1.8, -1.7], np.linspace(0.5, -0.5, 196)])
    basis, sym = _with_spectrum(spectrum)
    u, sigma = cluster.randomized_top_subspace(sym, 4, jax.random.PRNGKey(0), iters=8)
    np.testing.assert_allclose(sigma, [2.0, 1.9, 1.8, 1.7], rtol=1e-3)
    assert np.abs(_projector(u) - _projector(basis[:, :4])).max() < 1e-2


@pytest.mark.parametrize("spectrum", [np.linspace(0.6, 1.2, 150), np.linspace(-3.0, 0.5, 150)])
def test_lanczos_extremes_bracket_and_approach_the_spectrum(spectrum):
    _, sym = _with_spectrum(spectrum, seed=5)
    lowest, highest = cluster.lanczos_extremes(sym, jax.random.PRNGKey(1))
    jitted = jax.jit(cluster.lanczos_extremes)(sym, jax.random.PRNGKey(1))
    np.testing.assert_allclose(jitted, (lowest, highest), rtol=1e-5)
    span = spectrum.max() - spectrum.min()
    assert spectrum.min() - 1e-5 <= lowest <= spectrum.min() + 0.02 * span
    assert spectrum.max() - 0.02 * span <= highest <= spectrum.max() + 1e-5


def test_randomized_subspace_of_a_rank_deficient_matrix_is_finite():
    v = np.random.default_rng(4).standard_normal((80, 2)).astype(np.float32)
    sym = jnp.asarray(v @ v.T)  # rank 2, asked for 5 triplets: the Cholesky shift keeps every step defined
    u, sigma = cluster.randomized_top_subspace(sym, 5, jax.random.PRNGKey(0))
    assert np.all(np.isfinite(np.asarray(u))) and np.all(np.isfinite(np.asarray(sigma)))
    np.testing.assert_allclose(sigma[:2], np.sort(np.linalg.eigvalsh(v.T @ v))[::-1], rtol=1e-4)
    assert np.all(np.asarray(sigma[2:]) < 1e-3 * float(sigma[0]))


def test_topk_affinity_keeps_the_largest_entries():
    u = np.random.default_rng(0).standard_normal((30, 5)).astype(np.float32)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    index, value = cluster.topk_affinity(jnp.asarray(u), 2.0, 4, block=8)
    dense = np.maximum(u @ u.T, 0) ** 2
    np.fill_diagonal(dense, -1)
    for i in range(30):
        np.testing.assert_allclose(np.sort(np.asarray(value[i])), np.sort(np.maximum(dense[i], 0))[-4:], rtol=1e-5)
        assert i not in np.asarray(index[i])


def test_sparse_embedding_matches_dense_eigenvectors():
    ds, coef = _lsr_coef()
    graph = cluster.large_svd_affinity(jnp.asarray(coef), 4, 3, 2.0, jax.random.PRNGKey(0), neighbors=20)
    dense = np.asarray(graph.todense())
    embedding = cluster.sparse_spectral_embedding(graph.indices[:, 1].reshape(240, -1),
                                                  graph.data.reshape(240, -1), 4, jax.random.PRNGKey(1))
    reference, sqrt_degree = cluster.spectral_embedding(jnp.asarray(0.5 * (dense + dense.T)), 4)
    chex.assert_shape(embedding.vectors, (240, 4))
    np.testing.assert_allclose(embedding.sqrt_degree, sqrt_degree, rtol=1e-5)
    assert np.abs(_projector(embedding.vectors) - _projector(reference)).max() < 1e-2
    assert embedding.eigen.residual <= 1e-4 and embedding.eigen.angle_bound <= cluster.MAX_ANGLE


def _cliques(sizes, bridge):
    """Top-k rows (index, value) of cliques of the given sizes (unit weights, no self-loops), the last two joined
    by one edge of weight ``bridge``: eigenvalue number len(sizes) of M is 1 - O(bridge), next to the 1 of
    each connected component."""
    starts = np.cumsum([0, *sizes])
    width = max(sizes)
    index = np.zeros((starts[-1], width), np.int32)
    value = np.zeros((starts[-1], width), np.float32)
    for a, b in zip(starts[:-1], starts[1:]):
        for i in range(a, b):
            others = [j for j in range(a, b) if j != i]
            index[i, :len(others)], value[i, :len(others)] = others, 1.0
    index[starts[-2], -1], value[starts[-2], -1] = starts[-3], bridge
    return jnp.asarray(index), jnp.asarray(value)


def test_sparse_embedding_reports_a_cut_between_close_eigenvalues():
    # Three cliques, the last two joined by a weak edge: K = 2 wants the two components, but eigenvalue 3 of M is
    # 1 - 1.1e-8 (numpy), below float32's resolution: no residual bounds the angle to the exact top-2 pair.
    index, value = _cliques([30, 30, 30], bridge=1e-5)
    embedding = cluster.sparse_spectral_embedding(index, value, 2, jax.random.PRNGKey(0), iters=60)
    assert embedding.eigen.angle_bound > cluster.MAX_ANGLE
    assert int(embedding.eigen.iterations) == 10  # the angle test never passes: every allowed pass runs
    well_separated = cluster.sparse_spectral_embedding(index, value, 3, jax.random.PRNGKey(0), iters=60)
    assert well_separated.eigen.angle_bound <= cluster.MAX_ANGLE  # K = 3: the next eigenvalue is about -1/29


@pytest.mark.parametrize("assign", ["discretize", "kmeans"])
def test_iterative_solver_gives_the_dense_partition(assign):
    ds, coef = _lsr_coef()
    post = cluster.PostConfig(threshold=1.0, subspace_dim=3, power=2.0, assign=assign)
    dense = cluster.cluster_coefficients(coef, 4, post._replace(solver="dense"), jax.random.PRNGKey(0))
    sparse = cluster.cluster_coefficients(coef, 4, post._replace(solver="iterative"), jax.random.PRNGKey(0))
    assert metrics.accuracy(ds.y, np.asarray(dense.labels)) > 0.95
    assert metrics.ari(np.asarray(dense.labels), np.asarray(sparse.labels)) > 0.95
    assert sparse.affinity.shape == (240, 240) and sparse.affinity.nse == 240 * 32
    assert dense.angle_bound is None and sparse.angle_bound <= cluster.MAX_ANGLE
    with pytest.raises(ValueError, match="unknown solver 'arpack'"):
        cluster.cluster_coefficients(coef, 4, post._replace(solver="arpack"))


def test_iterative_solver_warns_when_its_embedding_fails_the_angle_test(monkeypatch):
    _, coef = _lsr_coef()
    post = cluster.PostConfig(subspace_dim=3, power=2.0, solver="iterative")
    monkeypatch.setattr(pipeline, "MAX_ANGLE", 0.0)  # the host check only: every positive bound now fails
    with pytest.warns(RuntimeWarning, match="Davis-Kahan angle bound .* exceeds 0.0"):
        result = cluster.cluster_coefficients(coef, 4, post)
    assert 0.0 < float(result.angle_bound) <= cluster.MAX_ANGLE
