"""RGRL / PSSC loss terms against slow numpy references, finite differences, and jit/non-jit variants."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxsc import losses
from jaxsc._src.testing import reference


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _normalized_weights(c, self_loops):
    s = 0.5 * (np.abs(c) + np.abs(c).T)
    if self_loops:
        s = s + np.eye(len(c))
    d = 1.0 / np.sqrt(s.sum(1))
    return d[:, None] * s * d[None, :]


def _pairwise_reference(x, x_hat, c, self_loops):
    """sum_ij W_ij ||x_i - x_hat_j||^2 + sum_i (1 - w_i)(||x_i||^2 + ||x_hat_i||^2), one pair at a time."""
    x, x_hat = x.reshape(len(x), -1).astype(np.float64), x_hat.reshape(len(x), -1).astype(np.float64)
    w = _normalized_weights(c.astype(np.float64), self_loops)
    total = 0.0
    for i in range(len(x)):
        for j in range(len(x)):
            total += w[i, j] * np.sum((x[i] - x_hat[j]) ** 2)
        total += (1 - w[i].sum()) * (np.sum(x[i] ** 2) + np.sum(x_hat[i] ** 2))
    return total


def _probs(n, k, seed=0):
    logits = 3 * _rand(n, k, seed=seed)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


class RelationLossTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_laplacian_reconstruction_equals_the_pairwise_sum(self):
        x, x_hat, c = _rand(7, 3, 2, 1), _rand(7, 3, 2, 1, seed=1), 0.3 * _rand(7, 7, seed=2)
        for self_loops in (True, False):
            fn = self.variant(lambda a, b, cc, sl=self_loops: losses.laplacian_reconstruction_loss(a, b, cc,
                                                                                                   self_loops=sl))
            value = fn(x, x_hat, c)
            chex.assert_shape(value, ())
            assert value.dtype == jnp.float32
            np.testing.assert_allclose(value, _pairwise_reference(x, x_hat, c, self_loops), rtol=1e-4)

    def test_laplacian_reconstruction_is_the_paper_sum_when_degrees_are_one(self):
        # a symmetric C whose normalised graph has unit row sums: equal blocks
        c = np.kron(np.eye(2), np.full((3, 3), 0.5)).astype(np.float32)
        x, x_hat = _rand(6, 4), _rand(6, 4, seed=3)
        w = _normalized_weights(c, True)
        np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)
        explicit = sum(w[i, j] * np.sum((x[i] - x_hat[j]) ** 2) for i in range(6) for j in range(6))
        np.testing.assert_allclose(losses.laplacian_reconstruction_loss(x, x_hat, c), explicit, rtol=1e-4)

    def test_normalized_adjacency_matmul_matches_dense(self):
        c, y = _rand(6, 6), _rand(6, 3, seed=1)
        s = losses.coefficient_similarity(c)
        np.testing.assert_allclose(s, 0.5 * (np.abs(c) + np.abs(c).T), rtol=1e-6)
        for self_loops in (True, False):
            np.testing.assert_allclose(losses.normalized_adjacency_matmul(s, y, self_loops=self_loops),
                                       _normalized_weights(c, self_loops) @ y, rtol=1e-4, atol=1e-6)

    def test_gradients_match_finite_differences(self):
        with jax.enable_x64(True):
            x = jnp.asarray(_rand(5, 3), jnp.float64)
            x_hat = jnp.asarray(_rand(5, 3, seed=1), jnp.float64)
            c = jnp.asarray(0.3 * _rand(5, 5, seed=2) + 0.5, jnp.float64)  # away from |C|'s kink at 0
            for self_loops in (True, False):
                check_grads(lambda xx, a, cc: losses.laplacian_reconstruction_loss(xx, a, cc, self_loops=self_loops),
                            (x, x_hat, c), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
            p = jnp.asarray(_probs(5, 3), jnp.float64)
            s = jnp.asarray(np.abs(_rand(5, 5, seed=4)) * 0.2, jnp.float64)
            for block_rows in (256, 2):  # one block; blocks of 2 rows, the last one shifted back over row 3
                check_grads(lambda pp, ss: losses.pseudo_graph_contrastive(pp, ss, block_rows=block_rows), (p, s),
                            order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
            check_grads(lambda pp: losses.pseudo_label_loss(pp, 0.5), (p,), order=1, modes=["rev"],
                        atol=1e-5, rtol=1e-5)
        # the hinge form is piecewise linear in S: dL/dS_ij = (1 - E_ij) [S_ij > 0] - E_ij [S_ij < 1e-3]
        p, s = _probs(6, 2, seed=7), np.abs(_rand(6, 6, seed=8)) * np.float32(2e-3)
        same = p.argmax(1)[:, None] == p.argmax(1)[None, :]
        expected = np.where(same, -(s < 1e-3).astype(np.float32), (s > 0).astype(np.float32))
        np.testing.assert_allclose(jax.grad(lambda ss: losses.pseudo_graph_hinge(p, ss))(s), expected)

    @chex.variants(with_jit=True, without_jit=True)
    def test_pseudo_label_loss_matches_numpy(self):
        p = _probs(9, 4)
        value = self.variant(losses.pseudo_label_loss)(p, 0.8)
        conf = p.max(1).astype(np.float64)
        np.testing.assert_allclose(value, -np.sum(np.where(conf >= 0.8, np.log(conf), 0.0)), rtol=1e-5)
        assert (conf >= 0.8).any() and (conf < 0.8).any()  # the mask matters in this example

    @chex.variants(with_jit=True, without_jit=True)
    def test_pseudo_graph_forms_match_loops(self):
        p, s = _probs(6, 3, seed=5), np.abs(_rand(6, 6, seed=6)).astype(np.float32) * 0.1
        pd, sd = p.astype(np.float64), s.astype(np.float64)
        contrastive, hinge = 0.0, 0.0
        for i in range(6):
            for j in range(6):
                d = np.linalg.norm(pd[i] - pd[j])
                contrastive += sd[i, j] * d ** 2 + (1 - sd[i, j]) * max(0.0, 1.0 - d) ** 2
                same = float(pd[i].argmax() == pd[j].argmax())
                hinge += max(0.0, (1 - same) * sd[i, j]) + max(0.0, same * (1e-3 - sd[i, j]))
        hinge += np.sum(pd.sum(0) ** 2)
        for block_rows in (256, 4, 1):
            np.testing.assert_allclose(self.variant(losses.pseudo_graph_contrastive, static_argnums=(2, 3))(p, s, 1.0,
                                                                                                        block_rows),
                                       contrastive / 6, rtol=1e-4)
        np.testing.assert_allclose(self.variant(losses.pseudo_graph_hinge)(p, s), hinge, rtol=1e-5)


@pytest.mark.parametrize("self_loops", [True, False])
def test_laplacian_gradient_equals_autodiff_of_the_matrix_product_form(self_loops):
    """The Gram-matrix custom VJP against autodiff of W X_hat (float64), with signed C, a zero entry and a
    zero row of C (where autodiff of |C| takes the slope 1), and the gradient with respect to X as well."""
    with jax.enable_x64(True):
        x, x_hat = jnp.asarray(_rand(9, 4, 3), jnp.float64), jnp.asarray(_rand(9, 4, 3, seed=1), jnp.float64)
        c = np.asarray(0.4 * _rand(9, 9, seed=2), np.float64)
        c[2, 5], c[4] = 0.0, 0.0
        args = (x, x_hat, jnp.asarray(c))
        ours = jax.value_and_grad(lambda *a: losses.laplacian_reconstruction_loss(*a, self_loops=self_loops),
                                  argnums=(0, 1, 2))(*args)
        theirs = jax.value_and_grad(lambda *a: reference.laplacian_reconstruction_matmul(*a, self_loops=self_loops),
                                    argnums=(0, 1, 2))(*args)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
        for mine, expected in zip(ours[1], theirs[1]):
            np.testing.assert_allclose(mine, expected, rtol=1e-10, atol=1e-12)


def test_contrastive_gradient_equals_autodiff_of_the_whole_matrix():
    """The blocked custom VJP against autodiff of the expression on whole n x n matrices (float64), with a
    repeated row (d = 0 off the diagonal) and a block size that does not divide n."""
    with jax.enable_x64(True):
        p = jnp.asarray(_probs(23, 4, seed=9), jnp.float64).at[3].set(_probs(23, 4, seed=9)[7])
        s = jnp.asarray(np.abs(_rand(23, 23, seed=10)), jnp.float64)
        expected = jax.value_and_grad(reference.pseudo_graph_contrastive_whole, argnums=(0, 1))(p, s)
        for block_rows in (1, 5, 23):
            value, grads = jax.value_and_grad(losses.pseudo_graph_contrastive, argnums=(0, 1))(p, s, 1.0, block_rows)
            np.testing.assert_allclose(value, expected[0], rtol=1e-12)
            for got, want in zip(grads, expected[1]):
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"similarity \(4, 4\) must be \(n, n\) for 3 rows"):
        losses.pseudo_graph_contrastive(jnp.full((3, 2), 0.5), jnp.zeros((4, 4)))
    with pytest.raises(ValueError, match="block_rows must be >= 1, got 0"):
        losses.pseudo_graph_contrastive(jnp.full((3, 2), 0.5), jnp.zeros((3, 3)), block_rows=0)
    with pytest.raises(ValueError, match=r"C has shape \(4, 4\), expected \(3, 3\)"):
        losses.laplacian_reconstruction_loss(jnp.zeros((3, 2)), jnp.zeros((3, 2)), jnp.zeros((4, 4)))
    with pytest.raises(ValueError, match="reconstruction shape"):
        losses.laplacian_reconstruction_loss(jnp.zeros((3, 2)), jnp.zeros((3, 4)), jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="C must be square"):
        losses.coefficient_similarity(jnp.zeros((3, 2)))
