"""UDLL's adaptive-neighbour graph and locality loss."""
import chex
import jax
import numpy as np
import pytest
from scipy.optimize import minimize

import jaxsc
from conftest import digits_subset
from jaxsc import losses, metrics, presets, train
from jaxsc.models import ConvAutoencoder


def _points(n=20, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _qp_column(m, lam):
    """min_a sum_i m_i a_i + lam a_i^2  s.t. a >= 0, sum a = 1, solved numerically (paper Eq. 3)."""
    res = minimize(lambda a: m @ a + lam * a @ a, np.full(len(m), 1 / len(m)), jac=lambda a: m + 2 * lam * a,
                   bounds=[(0, None)] * len(m), constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1}],
                   method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    return res.x


class AdaptiveNeighborsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_closed_form_solves_the_simplex_qp(self):
        z, k = _points(), 4
        index, weight = self.variant(lambda v: losses.adaptive_neighbors(v, k, block=8))(z)
        chex.assert_shape((index, weight), (20, k))
        np.testing.assert_allclose(weight.sum(1), 1.0, rtol=1e-5)
        zd = z.astype(np.float64)
        for j in range(20):
            others = np.array([i for i in range(20) if i != j])
            m = ((zd[others] - zd[j]) ** 2).sum(1)
            ms = np.sort(m)
            lam = k / 2 * ms[k] - ms[:k].sum() / 2  # paper Eq. 16
            dense = np.zeros(20)
            dense[others] = _qp_column(m, lam)
            ours = np.zeros(20)
            ours[np.asarray(index[j])] = np.asarray(weight[j])
            np.testing.assert_allclose(ours, dense, atol=2e-4)
            assert j not in np.asarray(index[j])

    def test_blocks_do_not_change_the_graph(self):
        z = _points(37, 5, seed=1)
        a = losses.adaptive_neighbors(z, 3, block=8)
        b = losses.adaptive_neighbors(z, 3, block=64)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_locality_loss_equals_the_trace_form(self):
        z = _points(15, 4, seed=2)
        index, weight = losses.adaptive_neighbors(z, 3)
        a = np.zeros((15, 15))
        for j in range(15):
            a[np.asarray(index[j]), j] = np.asarray(weight[j])  # column j holds a_ij
        s = (a + a.T) / 2
        lap = np.diag(s.sum(1)) - s
        zd = z.astype(np.float64)
        value = self.variant(losses.locality_loss)(z, index, weight)
        np.testing.assert_allclose(value, 2 * np.trace(zd.T @ lap @ zd), rtol=1e-4)


def test_bad_graph_arguments():
    with pytest.raises(ValueError, match="k must lie in 1..n-1 = 4, got 5"):
        losses.adaptive_neighbors(_points(5), 5)
    with pytest.raises(ValueError, match="graph index"):
        losses.locality_loss(_points(5), np.zeros((4, 2), np.int32), np.zeros((4, 2)))


def test_objective_needs_the_graph_with_the_data():
    x = jax.random.uniform(jax.random.PRNGKey(0), (10, 8, 8, 1))
    model = ConvAutoencoder((8, 8, 1), (3,), (4,))
    params = train.init_self_expressive_params(model.init(jax.random.PRNGKey(1), x[:2])["params"], 10, 1e-3)
    objective = train.SelfExpressiveObjective(model, w_local=2.0)
    with pytest.raises(ValueError, match="needs the prior graph"):
        objective.loss(params, x)
    z = model.apply({"params": params["autoencoder"]}, x, method="encode")
    index, weight = losses.adaptive_neighbors(z, 3)
    loss, terms = objective.loss(params, {"x": x, "neighbor_index": index, "neighbor_weight": weight})
    np.testing.assert_allclose(terms["local"], losses.locality_loss(z, index, weight), rtol=1e-6)
    np.testing.assert_allclose(loss, terms["rec"] + terms["reg"] + terms["se"] + 2.0 * terms["local"], rtol=1e-6)


def test_udll_presets_follow_the_paper_and_the_estimator_runs():
    orl = presets.get_preset("orl", (32, 32, 1), "udll")
    assert (orl.w_se, orl.w_reg, orl.w_local, orl.finetune_steps, orl.neighbors) == (5.0, 1.0, 8.0, 1550, 3)
    x, y = digits_subset()
    model = jaxsc.UDLL(n_clusters=3, seed=0, pretrain_steps=300, finetune_steps=30).fit(x)
    assert metrics.accuracy(y, model.labels_) > 0.8
