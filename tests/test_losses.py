import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsc import losses


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class LossTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_reconstruction_matches_numpy(self):
        x, x_hat = _rand(5, 4, 3, 1), _rand(5, 4, 3, 1, seed=1)
        value = self.variant(losses.reconstruction_loss)(x, x_hat)
        chex.assert_shape(value, ())
        assert value.dtype == jnp.float32
        np.testing.assert_allclose(value, ((x.astype(np.float64) - x_hat) ** 2).sum(), rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_self_expression_matches_numpy(self):
        z, c = _rand(6, 3), _rand(6, 6, seed=2)
        zc = z.astype(np.float64).T @ c.T.astype(np.float64)
        value = self.variant(losses.self_expression_loss)(z, (c @ z))
        np.testing.assert_allclose(value, ((z - zc.T) ** 2).sum(), rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_penalties_match_numpy(self):
        c = _rand(7, 7)
        np.testing.assert_allclose(self.variant(losses.l2_penalty)(c), (c.astype(np.float64) ** 2).sum(), rtol=1e-5)
        np.testing.assert_allclose(self.variant(losses.l1_penalty)(c), np.abs(c.astype(np.float64)).sum(),
                                   rtol=1e-5)

    def test_penalty_gradients(self):
        c = _rand(4, 4)
        np.testing.assert_allclose(jax.grad(losses.l2_penalty)(c), 2 * c, rtol=1e-6)
        np.testing.assert_allclose(jax.grad(losses.l1_penalty)(c), np.sign(c), rtol=1e-6)


def test_shape_mismatch_errors():
    with pytest.raises(ValueError, match="differs from input shape"):
        losses.reconstruction_loss(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="differs from latent shape"):
        losses.self_expression_loss(jnp.zeros((2, 3)), jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="unknown coefficient penalty 'l3'"):
        losses.coefficient_penalty(jnp.zeros((2, 2)), "l3")
