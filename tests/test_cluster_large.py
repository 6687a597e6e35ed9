"""The large-n cluster path against the dense one."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsc import cluster, data, metrics


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


def test_randomized_subspace_shift_finds_top_subspace_above_a_flat_bulk():
    # S = I + B as with C - diag(C) + I: top 6 eigenvalues 1.5, the bulk in [0.8, 1.2]. Unshifted power steps
    # separate 1.5 from 1.2 slowly; the shift by trace(S)/n = mean eigenvalue centres the bulk on 0.
    rng = np.random.default_rng(3)
    basis, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    spectrum = np.concatenate([np.full(6, 1.5), np.linspace(1.2, 0.8, 294)])
    sym = jnp.asarray((basis * spectrum) @ basis.T, jnp.float32)
    u, sigma = cluster.randomized_top_subspace(sym, 6, jax.random.PRNGKey(0), iters=8)
    np.testing.assert_allclose(sigma, 1.5, rtol=1e-3)
    assert np.abs(_projector(u) - _projector(basis[:, :6])).max() < 1e-2


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
    vectors, _ = cluster.sparse_spectral_embedding(graph.indices[:, 1].reshape(240, -1),
                                                   graph.data.reshape(240, -1), 4, jax.random.PRNGKey(1))
    reference, _ = cluster.spectral_embedding(jnp.asarray(0.5 * (dense + dense.T)), 4)
    assert np.abs(_projector(vectors) - _projector(reference)).max() < 1e-2


@pytest.mark.parametrize("assign", ["discretize", "kmeans"])
def test_iterative_solver_gives_the_dense_partition(assign):
    ds, coef = _lsr_coef()
    post = cluster.PostConfig(threshold=1.0, subspace_dim=3, power=2.0, assign=assign)
    dense = cluster.cluster_coefficients(coef, 4, post._replace(solver="dense"), jax.random.PRNGKey(0))
    sparse = cluster.cluster_coefficients(coef, 4, post._replace(solver="iterative"), jax.random.PRNGKey(0))
    assert metrics.accuracy(ds.y, np.asarray(dense.labels)) > 0.95
    assert metrics.ari(np.asarray(dense.labels), np.asarray(sparse.labels)) > 0.95
    assert sparse.affinity.shape == (240, 240) and sparse.affinity.nse == 240 * 32
    with pytest.raises(ValueError, match="unknown solver 'arpack'"):
        cluster.cluster_coefficients(coef, 4, post._replace(solver="arpack"))
