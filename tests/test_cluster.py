import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import enable_x64
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from jaxsc import cluster, metrics
from jaxsc._src.testing import reference
from jaxsc.data import union_of_subspaces


def _ridge_coefficients(x, lam=0.05):
    """Closed-form self-expression C = (X X^T + lam I)^-1 X X^T of rows x (a clean block structure)."""
    g = x.astype(np.float64) @ x.T.astype(np.float64)
    return np.linalg.solve(g + lam * np.eye(len(x)), g)


class ThresholdTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_loop_reference(self):
        c = np.random.default_rng(0).standard_normal((30, 30)).astype(np.float32)
        for rho in (0.04, 0.2, 0.5, 0.99):
            out = self.variant(cluster.threshold_coefficients, static_argnums=1)(c, rho)
            chex.assert_shape(out, c.shape)
            assert out.dtype == jnp.float32
            np.testing.assert_array_equal(np.asarray(out), reference.threshold_loop(c, rho))

    def test_keeps_all_at_one_and_crossing_entry(self):
        c = np.array([[0.5, 0.0], [0.3, 1.0]], np.float32)
        np.testing.assert_array_equal(cluster.threshold_coefficients(c, 1.0), c)
        # column 0: masses 0.5, 0.3 of 0.8; rho = 0.5 -> 0.5 > 0.4 crosses at the first entry: keep only it.
        np.testing.assert_array_equal(cluster.threshold_coefficients(c, 0.5)[:, 0], [0.5, 0.0])

    def test_bad_input(self):
        with pytest.raises(ValueError, match="square"):
            cluster.threshold_coefficients(jnp.zeros((2, 3)), 0.5)
        with pytest.raises(ValueError, match="threshold must be >= 0"):
            cluster.threshold_coefficients(jnp.zeros((2, 2)), -0.1)


def test_svd_affinity_matches_reference_float64():
    data = union_of_subspaces(4, 3, 20, 15, noise=0.05, seed=1)
    c = _ridge_coefficients(data.x)
    with enable_x64():
        for add_identity in (False, True):
            ours = cluster.svd_affinity(jnp.asarray(c), 4, 3, 4.0, add_identity)
            ref = reference.svd_affinity_reference(c, 4, 3, 4.0, add_identity)
            assert ours.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-5)


class SVDEmbeddingTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_gram_matches_numpy_svd(self):
        """The rows of U diag(sqrt(sigma)), L2-normalised: compared through their Gram matrix, which a sign flip of
        a singular vector leaves unchanged."""
        data = union_of_subspaces(3, 2, 12, 10, noise=0.05, seed=2)
        c = _ridge_coefficients(data.x)
        for add_identity in (False, True):
            e = self.variant(lambda m, a=add_identity: cluster.svd_embedding(m, 3, 2, a))(c.astype(np.float32))
            rank = 3 * 2 + 1
            chex.assert_shape(e, (30, rank))
            assert e.dtype == jnp.float32
            m = c - np.diag(np.diag(c)) + np.eye(30) if add_identity else c
            u, s, _ = np.linalg.svd(0.5 * (m + m.T))
            rows = u[:, :rank] * np.sqrt(s[:rank])
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
            np.testing.assert_allclose(np.asarray(e) @ np.asarray(e).T, rows @ rows.T, atol=2e-4)


class SVDOperatorTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy(self):
        c = np.random.default_rng(4).standard_normal((9, 9)).astype(np.float32)
        for add_identity in (False, True):
            for symmetrize_abs in (False, True):
                out = self.variant(lambda m, a=add_identity, b=symmetrize_abs: cluster.svd_operator(m, a, b))(c)
                chex.assert_shape(out, c.shape)
                assert out.dtype == jnp.float32
                m = c - np.diag(np.diag(c)) + np.eye(9) if add_identity else c
                m = np.abs(m) if symmetrize_abs else m
                np.testing.assert_allclose(np.asarray(out), 0.5 * (m + m.T), rtol=1e-6)

    def test_rank_and_bad_input(self):
        assert cluster.svd_rank(1440, 20, 12) == 241
        assert cluster.svd_rank(30, 4, 12) == 29  # capped at n - 1
        with pytest.raises(ValueError, match="square"):
            cluster.svd_operator(jnp.zeros((2, 3)))


class KMeansPlusPlusTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_seeds_are_data_points_one_per_separated_blob(self):
        x, y = make_blobs(n_samples=90, centers=[[0, 0], [100, 0], [0, 100]], cluster_std=0.5, random_state=3)
        x = x.astype(np.float32)
        for seed in range(5):
            centers = np.asarray(self.variant(lambda a, key: cluster.kmeans_plus_plus(a, 3, key))(
                x, jax.random.PRNGKey(seed)))
            chex.assert_shape(centers, (3, 2))
            # each centre is one of the points, and D^2 sampling puts one in each blob (a second pick in the
            # first blob has probability ~1e-5 per draw at these distances)
            index = [int(np.argmin(((x - c) ** 2).sum(1))) for c in centers]
            np.testing.assert_allclose(centers, x[index])
            assert sorted(y[index]) == [0, 1, 2], f"seed {seed}: centres in blobs {y[index]}"

    def test_bad_k(self):
        with pytest.raises(ValueError, match="1 <= k <= n"):
            cluster.kmeans_plus_plus(jnp.zeros((3, 2)), 4, jax.random.PRNGKey(0))


@pytest.mark.parametrize("assign", ["discretize", "kmeans"])
def test_assign_labels_recovers_blocks(assign):
    """A block-diagonal affinity's normalised embedding: its labels are the blocks."""
    sizes = (5, 7, 9)
    w = np.zeros((21, 21), np.float32)
    start = 0
    for size in sizes:
        w[start:start + size, start:start + size] = 1.0
        start += size
    vectors, sqrt_degree = cluster.spectral_embedding(jnp.asarray(w + 1e-3), 3)
    labels = cluster.assign_labels(vectors, sqrt_degree, 3, jax.random.PRNGKey(0), assign)
    chex.assert_shape(labels, (21,))
    truth = np.repeat(np.arange(3), sizes)
    assert metrics.ari(truth, np.asarray(labels)) == 1.0
    with pytest.raises(ValueError, match="unknown assign mode"):
        cluster.assign_labels(vectors, sqrt_degree, 3, jax.random.PRNGKey(0), "qr")


def test_affinity_properties_and_simple_mode():
    c = np.random.default_rng(3).standard_normal((12, 12)).astype(np.float32)
    a = np.asarray(cluster.svd_affinity(c, 2, 2, 2.0))
    np.testing.assert_allclose(a, a.T, atol=1e-6)
    assert a.min() >= 0 and np.isclose(a.max(), 1.0, atol=1e-6)
    np.testing.assert_allclose(cluster.simple_affinity(c), (np.abs(c) + np.abs(c).T) / 2, rtol=1e-6)


@pytest.mark.parametrize("assign", ["discretize", "kmeans"])
def test_spectral_same_partition_as_sklearn(assign):
    x, y = make_blobs(n_samples=120, centers=4, cluster_std=0.3, random_state=0)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    affinity = np.exp(-d2 / 2.0).astype(np.float32)
    ours = np.asarray(cluster.spectral_clustering(jnp.asarray(affinity), 4, jax.random.PRNGKey(0), assign))
    theirs = reference.spectral_reference(affinity, 4, assign)
    assert metrics.ari(theirs, ours) == 1.0
    assert metrics.ari(y, ours) == 1.0


def test_spectral_embedding_is_normalised_eigenbasis():
    rng = np.random.default_rng(4)
    w = rng.random((10, 10)).astype(np.float32)
    w = (w + w.T) / 2
    vectors, sqrt_degree = cluster.spectral_embedding(jnp.asarray(w), 3)
    w0 = w - np.diag(np.diag(w))
    d = np.sqrt(w0.sum(1))
    m = w0 / d[:, None] / d[None]
    np.testing.assert_allclose(sqrt_degree, d, rtol=1e-5)
    np.testing.assert_allclose(m @ np.asarray(vectors), np.asarray(vectors) * np.linalg.eigvalsh(m)[::-1][:3],
                               atol=1e-4)


class KMeansTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_sklearn_on_blobs(self):
        x, _ = make_blobs(n_samples=300, centers=5, cluster_std=1.0, random_state=1)
        x = x.astype(np.float32)
        ours = self.variant(lambda x, key: cluster.kmeans(x, 5, key))(x, jax.random.PRNGKey(0))
        sk = KMeans(5, n_init=10, random_state=0).fit(x)
        chex.assert_shape(ours.labels, (300,))
        chex.assert_shape(ours.centers, (5, 2))
        assert metrics.ari(sk.labels_, np.asarray(ours.labels)) == 1.0
        np.testing.assert_allclose(float(ours.inertia), sk.inertia_, rtol=1e-4)

    def test_restarts_pick_lowest_inertia(self):
        x, _ = make_blobs(n_samples=200, centers=6, cluster_std=2.0, random_state=2)
        x = jnp.asarray(x, jnp.float32)
        best = cluster.kmeans(x, 6, jax.random.PRNGKey(1), n_init=8)
        singles = [float(cluster.kmeans(x, 6, k, n_init=1).inertia) for k in jax.random.split(jax.random.PRNGKey(5), 8)]
        assert float(best.inertia) <= max(singles)

    def test_bad_k(self):
        with pytest.raises(ValueError, match="1 <= k <= n"):
            cluster.kmeans(jnp.zeros((3, 2)), 4, jax.random.PRNGKey(0))


def test_pipeline_against_reference_pipeline():
    data = union_of_subspaces(5, 4, 40, 30, noise=0.05, seed=0)
    c = _ridge_coefficients(data.x).astype(np.float32)
    post = cluster.PostConfig(threshold=0.2, subspace_dim=4, power=4.0)
    ours = cluster.cluster_coefficients(c, 5, post, jax.random.PRNGKey(0))
    ref_labels, ref_affinity = reference.cluster_reference(c, 5, 0.2, 4, 4.0)
    np.testing.assert_allclose(np.asarray(ours.affinity), ref_affinity, atol=1e-4)
    assert metrics.ari(ref_labels, np.asarray(ours.labels)) == 1.0
    assert metrics.accuracy(data.y, np.asarray(ours.labels)) == 1.0
    chex.assert_shape(ours.labels, (150,))
    assert ours.labels.dtype == jnp.int32


def test_pipeline_bad_input():
    c = np.eye(6, dtype=np.float32)
    with pytest.raises(ValueError, match="n_clusters must lie in 2..n = 6, got 7"):
        cluster.cluster_coefficients(c, 7)
    with pytest.raises(ValueError, match="NaN or inf"):
        cluster.cluster_coefficients(np.full((6, 6), np.nan, np.float32), 2)
    with pytest.raises(ValueError, match="square"):
        cluster.cluster_coefficients(np.zeros((6, 5), np.float32), 2)
    with pytest.raises(ValueError, match="unknown affinity"):
        cluster.cluster_coefficients(c, 2, cluster.PostConfig(affinity="rbf"))
    with pytest.raises(ValueError, match="unknown assign mode"):
        cluster.cluster_coefficients(c, 2, cluster.PostConfig(assign="qr"))


def test_stage_functions_name_bad_shapes():
    rect, key = np.zeros((6, 5), np.float32), jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match=r"square affinity, got shape \(6, 5\)"):
        cluster.spectral_clustering(rect, 2, key)
    with pytest.raises(ValueError, match="n_clusters must lie in 2..n = 6, got 9"):
        cluster.spectral_clustering(np.eye(6, dtype=np.float32), 9, key)
    for stage in (lambda c: cluster.svd_affinity(c, 2, 2, 2.0), cluster.simple_affinity,
                  lambda c: cluster.threshold_coefficients(c, 0.5)):
        with pytest.raises(ValueError, match=r"square coefficient matrix, got shape \(6, 5\)"):
            stage(rect)


class TopEigenpairsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_lobpcg_matches_numpy_eigh(self):
        rng = np.random.default_rng(7)
        basis, _ = np.linalg.qr(rng.standard_normal((120, 120)))
        spectrum = np.concatenate([[3.0, 2.5, 2.0, 1.8], np.linspace(1.0, 0.0, 116)])
        m = ((basis * spectrum) @ basis.T).astype(np.float32)
        for method in cluster.EIGENSOLVERS:
            values, vectors = self.variant(lambda a, key: cluster.top_eigenpairs(a, 4, method=method, key=key))(
                jnp.asarray(m), jax.random.PRNGKey(0))
            chex.assert_shape(vectors, (120, 4))
            assert values.dtype == jnp.float32
            np.testing.assert_allclose(values, spectrum[:4], rtol=1e-4)
            np.testing.assert_allclose(np.abs(np.sum(np.asarray(vectors) * basis[:, :4], axis=0)), 1.0, atol=1e-3)

    def test_falls_back_to_eigh_when_an_iterative_solver_does_not_converge(self):
        m = np.diag(np.linspace(2.0, 1.0, 60)).astype(np.float32)  # no gap: one step cannot converge
        for method, iters in (("lobpcg", 1), ("chebyshev", 2)):
            values, _ = cluster.top_eigenpairs(jnp.asarray(m), 3, method=method, iters=iters, degree=2)
            np.testing.assert_allclose(values, np.linspace(2.0, 1.0, 60)[:3], rtol=1e-6)

    def test_a_small_gap_at_k_falls_back_to_eigh(self):
        # A bulk of eigenvalues starts 1e-4 below the third (3e-5 of the largest): residuals that pass rtol = 1e-3
        # still let the third vector mix with the bulk; the Davis-Kahan bound catches it and eigh answers.
        m, basis, spectrum = _known_spectrum(top=(3.0, 2.5, 2.0), bulk_top=1.9999)
        for method in ("lobpcg", "chebyshev"):
            loose_values, loose = cluster.top_eigenpairs(jnp.asarray(m), 3, method=method, max_angle=np.inf)
            values, vectors = cluster.top_eigenpairs(jnp.asarray(m), 3, method=method)
            exact = np.abs(np.sum(np.asarray(vectors) * basis[:, :3], axis=0))
            mixed = np.abs(np.sum(np.asarray(loose) * basis[:, :3], axis=0))
            np.testing.assert_allclose(exact, 1.0, atol=1e-5)
            assert mixed[2] < 1.0 - 1e-4, (method, mixed)  # what the residual test alone accepted
            np.testing.assert_allclose(values, spectrum[:3], rtol=1e-5)
            np.testing.assert_allclose(loose_values, spectrum[:3], rtol=1e-3)

    def test_unknown_method(self):
        with pytest.raises(ValueError, match="unknown eigensolver"):
            cluster.top_eigenpairs(jnp.eye(30), 2, method="arpack")


def _known_spectrum(n=150, top=(3.0, 2.5, 2.0, 1.8, 1.7), seed=7, bulk_top=1.0):
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    spectrum = np.concatenate([top, np.linspace(bulk_top, -0.5, n - len(top))])
    return ((basis * spectrum) @ basis.T).astype(np.float32), basis, spectrum


class LOBPCGTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy_eigh(self):
        m, basis, spectrum = _known_spectrum()
        start = jax.random.normal(jax.random.PRNGKey(1), (150, 9))  # 5 wanted + 4 guard vectors
        result = self.variant(lambda a, x: cluster.lobpcg(lambda v: a @ v, x, iters=200, rtol=1e-5, wanted=5))(
            jnp.asarray(m), start)
        chex.assert_shape(result.vectors, (150, 9))
        chex.assert_shape(result.values, (9,))
        assert result.vectors.dtype == jnp.float32
        assert 0 < int(result.iterations) < 200 and float(result.residual) <= 1e-5
        np.testing.assert_allclose(result.values[:5], spectrum[:5], rtol=1e-5)
        np.testing.assert_allclose(np.abs(np.sum(np.asarray(result.vectors[:, :5]) * basis[:, :5], axis=0)), 1.0,
                                   atol=1e-4)
        np.testing.assert_allclose(np.asarray(result.vectors.T @ result.vectors), np.eye(9), atol=1e-4)

    def test_exact_start_stops_at_once_without_nan(self):
        m, basis, spectrum = _known_spectrum()
        result = cluster.lobpcg(lambda v: jnp.asarray(m) @ v, jnp.asarray(basis[:, :3], jnp.float32), iters=50)
        assert int(result.iterations) == 0
        assert np.all(np.isfinite(np.asarray(result.vectors)))
        np.testing.assert_allclose(result.values, spectrum[:3], rtol=1e-5)

    def test_dependent_directions_are_dropped(self):
        # An operator with only 3 distinct non-zero directions: R and P soon become dependent on X.
        m, basis, _ = _known_spectrum()
        low_rank = (basis[:, :3] * np.array([3.0, 2.0, 1.0])) @ basis[:, :3].T
        result = cluster.lobpcg(lambda v: jnp.asarray(low_rank, jnp.float32) @ v,
                                jax.random.normal(jax.random.PRNGKey(0), (150, 5)), iters=30, wanted=3)
        assert np.all(np.isfinite(np.asarray(result.vectors)))
        np.testing.assert_allclose(result.values[:3], [3.0, 2.0, 1.0], rtol=1e-4)


class ChebyshevSubspaceTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy_eigh(self):
        m, basis, spectrum = _known_spectrum()
        start = jax.random.normal(jax.random.PRNGKey(1), (150, 9))  # 5 wanted + 4 guard vectors
        result = self.variant(lambda a, x: cluster.chebyshev_subspace(lambda v: a @ v, x, -0.5, degree=6, iters=60,
                                                                      rtol=1e-5, wanted=5))(jnp.asarray(m), start)
        chex.assert_shape(result.vectors, (150, 9))
        chex.assert_shape(result.values, (9,))
        assert result.vectors.dtype == jnp.float32
        assert 0 < int(result.iterations) < 60 and float(result.residual) <= 1e-5
        np.testing.assert_allclose(result.values[:5], spectrum[:5], rtol=1e-5)
        np.testing.assert_allclose(np.abs(np.sum(np.asarray(result.vectors[:, :5]) * basis[:, :5], axis=0)), 1.0,
                                   atol=1e-4)
        np.testing.assert_allclose(np.asarray(result.vectors.T @ result.vectors), np.eye(9), atol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_angle_bound_matches_its_definition(self):
        m, _, _ = _known_spectrum()
        start = jax.random.normal(jax.random.PRNGKey(3), (150, 9))
        for wanted in (5, 9):
            result = self.variant(lambda a, x, wanted=wanted: cluster.chebyshev_subspace(
                lambda v: a @ v, x, -0.5, iters=3, wanted=wanted))(jnp.asarray(m), start)
            v, theta = np.asarray(result.vectors, np.float64), np.asarray(result.values, np.float64)
            residuals = m @ v[:, :wanted] - v[:, :wanted] * theta[:wanted]
            expected = np.linalg.norm(residuals) / (theta[wanted - 1] - theta[wanted]) if wanted < 9 else np.inf
            np.testing.assert_allclose(float(result.angle_bound), expected, rtol=1e-3)
            np.testing.assert_allclose(float(result.residual),
                                       np.linalg.norm(residuals, axis=0).max() / np.abs(theta[:wanted]).max(),
                                       rtol=1e-3)

    def test_a_loose_lower_bound_still_converges(self):
        m, _, spectrum = _known_spectrum()
        start = jax.random.normal(jax.random.PRNGKey(2), (150, 8))
        result = cluster.chebyshev_subspace(lambda v: jnp.asarray(m) @ v, start, -10.0, iters=200, rtol=1e-5,
                                            wanted=4)
        assert float(result.residual) <= 1e-5
        np.testing.assert_allclose(result.values[:4], spectrum[:4], rtol=1e-5)

    def test_gershgorin_lower_bound_matches_its_definition(self):
        m, _, spectrum = _known_spectrum()
        expected = np.min(np.diag(m) - (np.abs(m).sum(axis=1) - np.abs(np.diag(m))))
        bound = cluster.gershgorin_lower_bound(jnp.asarray(m))
        np.testing.assert_allclose(bound, expected, rtol=1e-5)
        assert float(bound) <= spectrum.min()


def test_nonnegative_power_matches_numpy():
    x = np.random.default_rng(0).standard_normal((20, 20)).astype(np.float32)
    for power in (4.0, 2.5, 1):
        expected = np.maximum(x, 0) ** power
        np.testing.assert_allclose(cluster.nonnegative_power(jnp.asarray(x), power), expected, rtol=1e-5)
    traced = jax.jit(cluster.nonnegative_power)(jnp.asarray(x), jnp.asarray(3.0))  # a traced exponent works too
    np.testing.assert_allclose(traced, np.maximum(x, 0) ** 3, rtol=1e-5, atol=1e-6)


def test_randomized_solver_gives_the_dense_partition():
    data = union_of_subspaces(6, 4, 60, 40, noise=0.05, seed=1)
    c = _ridge_coefficients(data.x).astype(np.float32)
    post = cluster.PostConfig(threshold=0.2, subspace_dim=4, power=4.0)
    dense = cluster.cluster_coefficients(c, 6, post, jax.random.PRNGKey(0))
    fast = cluster.cluster_coefficients(c, 6, post._replace(solver="randomized"), jax.random.PRNGKey(0))
    assert metrics.ari(np.asarray(dense.labels), np.asarray(fast.labels)) == 1.0
    assert metrics.accuracy(data.y, np.asarray(fast.labels)) == 1.0
    chex.assert_equal_shape([dense.affinity, fast.affinity])


@pytest.mark.parametrize("solver,assign", [("dense", "discretize"), ("dense", "kmeans"),
                                           ("randomized", "discretize"), ("iterative", "kmeans")])
def test_stage_runs_in_float64(solver, assign):
    """With jax_enable_x64 a float64 C goes through the whole stage (its integer intermediates then default to
    int64) and gives float32's partition."""
    data = union_of_subspaces(6, 4, 60, 40, noise=0.05, seed=1)
    c = _ridge_coefficients(data.x)
    post = cluster.PostConfig(threshold=0.2, subspace_dim=4, power=4.0, solver=solver, assign=assign)
    single = cluster.cluster_coefficients(c.astype(np.float32), 6, post, jax.random.PRNGKey(0))
    with enable_x64():
        double = cluster.cluster_coefficients(jnp.asarray(c, jnp.float64), 6, post, jax.random.PRNGKey(0))
        assert double.labels.dtype == jnp.int32
        assert double.affinity.dtype == jnp.float64
    assert metrics.ari(np.asarray(single.labels), np.asarray(double.labels)) == 1.0
    assert metrics.accuracy(data.y, np.asarray(double.labels)) == 1.0


def test_single_blas_thread_limits_and_restores_blas_threads():
    from threadpoolctl import threadpool_info

    from jaxsc._src.cluster.blas_threads import single_blas_thread

    jnp.linalg.eigh(jnp.eye(3))  # jax's LAPACK is loaded

    def blas_threads():
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    assert before, "no BLAS library found loaded"
    with single_blas_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


@pytest.mark.parametrize("solver, limited", [("dense", False), ("randomized", True), ("iterative", True)])
def test_cluster_stage_limits_blas_threads_for_the_iterative_solvers_on_cpu(monkeypatch, solver, limited):
    import contextlib

    from jaxsc._src.cluster import pipeline

    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr(pipeline, "single_blas_thread", recording)
    data = union_of_subspaces(3, 2, 10, 20, noise=0.0, seed=0)
    c = _ridge_coefficients(data.x).astype(np.float32)
    out = cluster.cluster_coefficients(c, 3, cluster.PostConfig(subspace_dim=2, solver=solver))
    assert entered == ([True] if limited else [])
    assert metrics.accuracy(data.y, np.asarray(out.labels)) == 1.0


@pytest.mark.parametrize("solver", ["dense", "randomized"])
def test_compiled_stage_gives_the_jitted_stage_results(solver):
    data = union_of_subspaces(4, 3, 30, 25, noise=0.05, seed=2)
    c = jnp.asarray(_ridge_coefficients(data.x), jnp.float32)
    post = cluster.PostConfig(threshold=0.2, subspace_dim=3, power=4.0, solver=solver)
    stage = cluster.compile_cluster_stage(100, 4, post)
    key = jax.random.PRNGKey(3)
    assert stage.matches(coef=c, key=key)
    ours = cluster.cluster_coefficients(c, 4, post, key, compiled=stage)
    jitted = cluster.cluster_coefficients(c, 4, post, key)
    np.testing.assert_array_equal(ours.labels, jitted.labels)
    np.testing.assert_allclose(ours.affinity, jitted.affinity, rtol=1e-6, atol=1e-7)
    assert metrics.accuracy(data.y, np.asarray(ours.labels)) == 1.0


def test_compiled_stage_runs_only_for_the_call_it_was_compiled_for(monkeypatch):
    data = union_of_subspaces(4, 3, 30, 25, noise=0.05, seed=2)
    c = jnp.asarray(_ridge_coefficients(data.x), jnp.float32)
    post = cluster.PostConfig(threshold=0.2, subspace_dim=3, power=4.0)
    stage = cluster.compile_cluster_stage(100, 4, post)
    assert cluster.compile_cluster_stage(100, 4, post)._executable is stage._executable  # one compilation
    key = jax.random.PRNGKey(0)
    assert not stage.matches(coef=c[:50, :50], key=key)
    assert not stage.matches(coef=c.astype(jnp.bfloat16), key=key)
    assert not stage.matches(coef=np.asarray(c), key=key)  # a host array: the jitted stage places it
    assert not stage.matches(coef=c, key=jax.random.key(0))  # a typed key, not the raw uint32 pair
    assert not stage.serves(stage.jitted, n_clusters=5, post=post)
    assert not stage.serves(stage.jitted, n_clusters=4, post=post._replace(power=2.0))
    compiled_runs = []
    executable = stage._executable.result()
    monkeypatch.setattr(stage._executable, "result", lambda: lambda **kw: compiled_runs.append(1) or executable(**kw))
    other = cluster.cluster_coefficients(c, 5, post, key, compiled=stage)  # another K: the jitted stage runs
    assert compiled_runs == [] and other.labels.shape == (100,)
    ours = cluster.cluster_coefficients(c, 4, post, key, compiled=stage)
    assert compiled_runs == [1]
    np.testing.assert_array_equal(ours.labels, cluster.cluster_coefficients(c, 4, post, key).labels)
    with pytest.raises(ValueError, match="n_clusters"):
        cluster.compile_cluster_stage(5, 7, post)
