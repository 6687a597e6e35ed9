import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from conftest import numpy_ridge_coefficients
from jaxsc import models


def numpy_same_conv(x, kernel):
    """Direct loops: TensorFlow SAME padding (extra pixel after), stride 2, HWIO kernel."""
    n, h, w, cin = x.shape
    k = kernel.shape[0]
    oh, ow = -(-h // 2), -(-w // 2)
    ph, pw = max((oh - 1) * 2 + k - h, 0), max((ow - 1) * 2 + k - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((n, oh, ow, kernel.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, 2 * i:2 * i + k, 2 * j:2 * j + k, :]
            out[:, i, j, :] = np.einsum("nabc,abcd->nd", patch, kernel)
    return out


@pytest.mark.parametrize("hw,k", [((8, 8), 3), ((7, 6), 5), ((6, 5), 3)])
def test_same_conv_matches_tf_semantics(hw, k):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *hw, 2)).astype(np.float32)
    kernel = rng.standard_normal((k, k, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(models.same_conv(x, kernel), numpy_same_conv(x, kernel), rtol=1e-4, atol=1e-4)


def test_transpose_is_the_adjoint():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 6, 2)).astype(np.float32)
    kernel = rng.standard_normal((5, 5, 2, 3)).astype(np.float32)
    y = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    lhs = np.vdot(models.same_conv(x, kernel), y)
    rhs = np.vdot(x, models.same_conv_transpose(y, kernel, (7, 6)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4)


def _lax_conv(x, kernel, stride=2):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("gradient_max", [0, 2 ** 26], ids=["xla-gradient", "patch-gradient"])
@pytest.mark.parametrize("hw,k,stride", [((48, 42), 5, 2), ((12, 11), 3, 2), ((6, 5), 3, 2), ((5, 3), 1, 2),
                                         ((2, 1), 2, 2), ((7, 6), 3, 1), ((4, 5), 2, 1)])
def test_custom_kernel_gradients_match_autodiff_of_the_lax_convolutions(monkeypatch, gradient_max, hw, k, stride):
    """same_conv and same_conv_transpose have hand-written kernel gradients (patches times the output
    gradient, or XLA's past PATCH_GRADIENT_MAX_ELEMENTS); they must equal JAX's autodiff of lax's convolution
    and of its linear transpose."""
    from jaxsc._src.models import conv
    monkeypatch.setattr(conv, "PATCH_GRADIENT_MAX_ELEMENTS", gradient_max)
    assert conv.uses_patch_gradient((3, *hw, 2), k, stride) == (gradient_max > 0)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((3, *hw, 2)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((k, k, 2, 4)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((3, -(-hw[0] // stride), -(-hw[1] // stride), 4)), jnp.float32)

    def lax_transpose(y, kernel):
        return jax.linear_transpose(lambda v: _lax_conv(v, kernel, stride), x)(y)[0]

    def loss(conv, conv_t, x, y, kernel):
        value = jnp.sum(jnp.sin(conv(x, kernel, stride)))
        return value + (jnp.sum(jnp.cos(conv_t(y, kernel)) * x) if stride == 2 else 0.0)

    ours = jax.grad(lambda *a: loss(models.same_conv, lambda y, k: models.same_conv_transpose(y, k, hw), *a),
                    (0, 1, 2))(x, y, kernel)
    reference = jax.grad(lambda *a: loss(_lax_conv, lax_transpose, *a), (0, 1, 2))(x, y, kernel)
    for got, want in zip(ours, reference):
        chex.assert_trees_all_close(got, want, rtol=1e-4, atol=1e-4)
    jitted = jax.jit(jax.grad(lambda k: jnp.sum(models.same_conv(x, k, stride) ** 2)))(kernel)
    chex.assert_trees_all_close(jitted, jax.grad(lambda k: jnp.sum(_lax_conv(x, k, stride) ** 2))(kernel),
                                rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("direct_max,patch_max", [(0, 0), (0, 2 ** 22), (10 ** 6, 0)],
                         ids=["xla-convolution", "patch-product", "direct-sum"])
@pytest.mark.parametrize("hw,k,stride", [((48, 42), 5, 2), ((6, 5), 3, 2), ((5, 3), 1, 2), ((2, 1), 2, 2),
                                         ((7, 6), 3, 1), ((4, 5), 2, 1)])
def test_every_convolution_path_equals_lax(monkeypatch, direct_max, patch_max, hw, k, stride):
    """The forward convolution as a sum of shifted windows (few products per output on the CPU), as a patch
    product (small maps) and as XLA's convolution (large ones) equals lax's convolution; the transpose equals
    lax's linear transpose."""
    from jaxsc._src.models import conv
    monkeypatch.setattr(conv, "DIRECT_MAX_TERMS", direct_max)
    monkeypatch.setattr(conv, "PATCH_MAX_ELEMENTS", patch_max)
    assert conv.uses_direct_sum((k, k, 3, 4)) == (direct_max > 0 and jax.default_backend() == "cpu")
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((2, *hw, 3)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((k, k, 3, 4)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((2, -(-hw[0] // stride), -(-hw[1] // stride), 4)), jnp.float32)
    assert conv.uses_patch_forward(x.shape, k, stride) == (patch_max > 0)
    want_y = _lax_conv(x, kernel, stride)
    want_x = jax.linear_transpose(lambda v: _lax_conv(v, kernel, stride), x)(y)[0]
    chex.assert_trees_all_close(conv._forward(x, kernel, stride), want_y, rtol=1e-4, atol=1e-4)
    chex.assert_trees_all_close(conv._transpose(y, kernel, hw, stride), want_x, rtol=1e-4, atol=1e-4)
    chex.assert_trees_all_close(jax.jit(conv._transpose, static_argnums=(2, 3))(y, kernel, hw, stride), want_x,
                                rtol=1e-4, atol=1e-4)
    chex.assert_shape(conv._transpose(y, kernel, hw, stride), x.shape)


@pytest.mark.parametrize("direct_max", [0, 10 ** 6], ids=["xla-convolution", "direct-sum"])
@pytest.mark.parametrize("hw,k", [((48, 42), 5), ((12, 11), 3), ((7, 9), 4), ((8, 8), 3), ((5, 3), 1),
                                  ((2, 1), 2), ((1, 1), 3)])
def test_phase_transpose_equals_lax_linear_transpose(monkeypatch, direct_max, hw, k):
    """The stride-2 transposed convolution in the phase form (the CPU's), its stride-1 convolution by XLA or as
    a sum of shifted windows, equals lax's linear transpose of the convolution, for odd and even sizes and
    kernels, under jit too, and keeps the input's dtype."""
    from jaxsc._src.models import conv
    monkeypatch.setattr(conv, "DIRECT_MAX_TERMS", direct_max)
    rng = np.random.default_rng(6)
    x = jnp.zeros((2, *hw, 3), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((k, k, 3, 4)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((2, -(-hw[0] // 2), -(-hw[1] // 2), 4)), jnp.float32)
    want = jax.linear_transpose(lambda v: _lax_conv(v, kernel, 2), x)(y)[0]
    chex.assert_trees_all_close(conv._phase_transpose(y, kernel, hw), want, rtol=1e-4, atol=1e-4)
    chex.assert_trees_all_close(jax.jit(conv._phase_transpose, static_argnums=2)(y, kernel, hw), want,
                                rtol=1e-4, atol=1e-4)
    half = conv._phase_transpose(y.astype(jnp.bfloat16), kernel, hw)
    chex.assert_shape(half, x.shape)
    assert half.dtype == jnp.bfloat16
    assert conv.uses_phase_transpose(2) == (jax.default_backend() == "cpu") and not conv.uses_phase_transpose(1)


def test_patch_kernel_gradient_equals_autodiff_on_any_backend():
    """Off the CPU, same_conv differentiates lax's convolution; both kernel gradients agree."""
    from jaxsc._src.models import conv
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((2, 9, 7, 3)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)
    for stride in (1, 2):
        dy = jnp.asarray(rng.standard_normal((2, -(-9 // stride), -(-7 // stride), 4)), jnp.float32)
        autodiff = jax.vjp(lambda k: _lax_conv(x, k, stride), kernel)[1](dy)[0]
        chex.assert_trees_all_close(conv._patch_kernel_gradient(x, dy, 3, stride), autodiff, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the window sums are the CPU's")
def test_xla_kernel_gradient_holds_no_product_per_window_term(monkeypatch):
    """Past PATCH_GRADIENT_MAX_ELEMENTS the kernel gradient is XLA's convolution's, not autodiff of the window
    sum: XLA computed that one as a broadcast product per term, all held at once (the MNIST decoder's last layer,
    25 terms: 10.5 GB of temporaries in the n = 15000 DSC step, 1.2 GB at n = 2000). The compiled autoencoder
    gradient must plan no more temporaries than with the patch gradient."""
    from jaxsc._src.models import conv
    model = models.ConvAutoencoder((28, 28, 1), (5, 3, 3), (15, 10, 5))
    x = jax.random.uniform(jax.random.PRNGKey(0), (500, 28, 28, 1))
    params = model.init(jax.random.PRNGKey(1), x[:2])

    def temporaries(gradient_max):
        monkeypatch.setattr(conv, "PATCH_GRADIENT_MAX_ELEMENTS", gradient_max)
        grad = jax.jit(jax.grad(lambda p: jnp.sum((model.apply(p, x) - x) ** 2)))
        return grad.lower(params).compile().memory_analysis().temp_size_in_bytes

    patch, xla = temporaries(2 ** 26), temporaries(0)
    assert conv.uses_direct_sum((5, 5, 1, 15))
    assert xla <= patch, (xla, patch)


def test_same_conv_module_equals_flax_conv():
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 9, 8, 3)), jnp.float32)
    ours = models.SameConv(5, 3, stride=2)
    params = ours.init(jax.random.PRNGKey(0), x)
    flax_conv = nn.Conv(5, (3, 3), strides=(2, 2), padding="SAME")
    out = ours.apply(params, x)
    chex.assert_shape(out, (2, 5, 4, 5))
    chex.assert_trees_all_close(out, flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)


def test_conv_autoencoder_restores_48x42():
    model = models.ConvAutoencoder((48, 42, 1), (5, 3, 3), (10, 20, 30))
    x = jnp.ones((3, 48, 42, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    z = model.apply(variables, x, method="encode")
    chex.assert_shape(z, (3, 6, 6, 30))
    assert model.latent_shape == (6, 6, 30)
    out = model.apply(variables, x)
    chex.assert_shape(out, (3, 48, 42, 1))
    assert (np.asarray(out) >= 0).all()  # ReLU output, as in DSC-Net
    assert models.conv_shapes((48, 42), 3) == [(48, 42), (24, 21), (12, 11), (6, 6)]
    params = variables["params"]
    np.testing.assert_array_equal(params["enc0_bias"], 0)
    bound = np.sqrt(6 / (25 * 1 + 25 * 10))  # Xavier-uniform with receptive field
    assert np.abs(params["enc0_kernel"]).max() <= bound


def test_conv_autoencoder_rejects_bad_layers():
    with pytest.raises(ValueError, match="equal length"):
        models.ConvAutoencoder((8, 8, 1), (3, 3), (4,)).init(jax.random.PRNGKey(0), jnp.ones((1, 8, 8, 1)))


def test_mlp_autoencoder_layout():
    model = models.MLPAutoencoder(input_dim=20, latent_dim=4)
    x = jnp.ones((5, 20))
    variables = model.init(jax.random.PRNGKey(0), x)
    chex.assert_shape(model.apply(variables, x, method="encode"), (5, 4))
    chex.assert_shape(model.apply(variables, x), (5, 20))
    sizes = [v["kernel"].shape for v in variables["params"].values()]
    assert sizes == [(20, 500), (500, 500), (500, 2000), (2000, 4), (4, 2000), (2000, 500), (500, 500),
                     (500, 20)]


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in its equations' parameters."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


class SelfExpressionTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy(self):
        rng = np.random.default_rng(2)
        c, z = rng.standard_normal((5, 5)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
        np.testing.assert_allclose(self.variant(models.self_express)(c, z), c @ z, rtol=1e-5, atol=1e-5)
        masked = c - np.diag(np.diag(c))
        fn = self.variant(lambda c, z: models.self_express(c, z, zero_diagonal=True))
        np.testing.assert_allclose(fn(c, z), masked @ z, rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_without_diagonal_matches_numpy(self):
        rng = np.random.default_rng(5)
        for dtype in (np.float32, jnp.bfloat16):
            c = rng.standard_normal((6, 6)).astype(dtype)
            out = self.variant(models.without_diagonal)(c)
            assert out.shape == (6, 6) and out.dtype == dtype
            expected = np.asarray(c, np.float32) * (1 - np.eye(6, dtype=np.float32))
            np.testing.assert_array_equal(np.asarray(out, np.float32), expected)

    def test_bfloat16_product_is_close(self):
        rng = np.random.default_rng(3)
        c, z = rng.standard_normal((64, 64)).astype(np.float32), rng.standard_normal((64, 8)).astype(np.float32)
        out = models.self_express(c, z, matmul_dtype=jnp.bfloat16)
        assert out.dtype == jnp.float32
        np.testing.assert_allclose(out, c @ z, rtol=0.05, atol=0.3)

    @chex.variants(with_jit=True, without_jit=True)
    def test_bfloat16_gradients_are_close_and_their_products_narrow(self):
        """With matmul_dtype the two gradient products, like C Z, take bfloat16 operands and give float32."""
        rng = np.random.default_rng(4)
        c, z = rng.standard_normal((48, 48)).astype(np.float32), rng.standard_normal((48, 6)).astype(np.float32)
        target = rng.standard_normal((48, 6)).astype(np.float32)

        def loss(c, z, dtype):
            return jnp.sum(jnp.square(models.self_express(c, z, matmul_dtype=dtype) - target))

        got = self.variant(jax.grad(lambda c, z: loss(c, z, jnp.bfloat16), (0, 1)))(c, z)
        want = jax.grad(lambda c, z: loss(c, z, None), (0, 1))(c, z)
        for g, w in zip(got, want):
            assert g.dtype == jnp.float32 and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=0.05, atol=0.05 * float(jnp.max(jnp.abs(w))))
        jaxpr = jax.make_jaxpr(jax.grad(lambda c, z: loss(c, z, jnp.bfloat16), (0, 1)))(c, z)
        dots = [e for e in _equations(jaxpr.jaxpr) if e.primitive.name == "dot_general"]
        assert len(dots) == 3
        assert all(v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars)
        assert all(e.outvars[0].aval.dtype == jnp.float32 for e in dots)


class RidgeCoefficientsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(zero_diagonal=(False, True), d=(4, 12))  # d < n: Woodbury's d x d inverse; else n x n
    def test_matches_row_by_row_ridge(self, zero_diagonal, d):
        z = np.random.default_rng(4).standard_normal((9, d)).astype(np.float32)
        c = self.variant(lambda z: models.ridge_coefficients(z, 0.3, zero_diagonal=zero_diagonal))(z)
        chex.assert_shape(c, (9, 9))
        assert c.dtype == jnp.float32
        np.testing.assert_allclose(c, numpy_ridge_coefficients(z, 0.3, zero_diagonal), atol=2e-5)
        if zero_diagonal:
            np.testing.assert_allclose(np.diag(c), 0.0, atol=1e-6)

    @parameterized.parameters(3, 8)
    def test_is_a_minimum_of_the_objective(self, d):
        z = jnp.asarray(np.random.default_rng(5).standard_normal((6, d)), jnp.float32)
        c = models.ridge_coefficients(z, 0.5, zero_diagonal=True)
        grad = jax.grad(lambda c: jnp.sum(jnp.square(z - models.self_express(c, z, zero_diagonal=True)))
                        + 0.5 * jnp.sum(jnp.square(c - jnp.diag(jnp.diagonal(c)))))(c)
        np.testing.assert_allclose(grad, 0.0, atol=1e-4)

    def test_large_n_forms_no_n_by_n_factorisation(self):
        """For d < n the jaxpr factors only a d x d matrix; the result matches the n x n form in float64."""
        z = np.random.default_rng(7).standard_normal((60, 5))
        text = str(jax.make_jaxpr(lambda z: models.ridge_coefficients(z, 0.1))(jnp.asarray(z, jnp.float32)))
        assert "cholesky" in text and "f32[60,60] = cholesky" not in text
        for zero_diagonal in (False, True):
            got = models.ridge_coefficients(jnp.asarray(z, jnp.float32), 0.1, zero_diagonal=zero_diagonal)
            np.testing.assert_allclose(got, numpy_ridge_coefficients(z, 0.1, zero_diagonal), atol=1e-4)

    def test_spd_inverse_and_its_derivatives(self):
        """M^-1 against numpy; vmapped, one Cholesky per matrix (no batched LAPACK call: the deadlock in
        ``spd_inverse``'s docstring); first and second derivatives against autodiff through Cholesky."""
        from jaxsc._src.models.self_expression import _cholesky_inverse

        z = jnp.asarray(np.random.default_rng(6).standard_normal((3, 7, 4)), jnp.float32)
        spd = jax.vmap(lambda z: z @ z.T + 0.2 * jnp.eye(7))(z)
        np.testing.assert_allclose(jax.vmap(models.spd_inverse)(spd), np.linalg.inv(np.asarray(spd, np.float64)),
                                   rtol=1e-4, atol=1e-4)
        text = str(jax.make_jaxpr(jax.vmap(models.spd_inverse))(spd))
        assert "cholesky" in text and "f32[3,7,7] = cholesky" not in text

        def loss(inverse, z):
            return jnp.sum(jnp.sin(jax.vmap(lambda z: inverse(z @ z.T + 0.2 * jnp.eye(7)))(z)))

        for order in (1, 2):
            def derivative(inverse, z):
                g = jax.grad(lambda z: loss(inverse, z))
                return g(z) if order == 1 else jax.grad(lambda z: jnp.sum(g(z) ** 2))(z)
            np.testing.assert_allclose(derivative(models.spd_inverse, z), derivative(_cholesky_inverse, z),
                                       rtol=1e-3, atol=1e-3)

    def test_rejects_bad_input(self):
        with pytest.raises(ValueError, match="latent rows"):
            models.ridge_coefficients(jnp.zeros((2, 3, 4)), 1.0)
        with pytest.raises(ValueError, match="reg must be > 0"):
            models.ridge_coefficients(jnp.zeros((4, 2)), 0.0)


def test_init_coefficients_and_errors():
    c = models.init_coefficients(4, 1e-8)
    chex.assert_shape(c, (4, 4))
    np.testing.assert_allclose(c, 1e-8)
    with pytest.raises(ValueError, match="at least 2 samples"):
        models.init_coefficients(1)
    with pytest.raises(ValueError, match="do not match 4 latent rows"):
        models.self_express(jnp.zeros((3, 3)), jnp.zeros((4, 2)))


class ClassifierTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_probs_are_the_softmax_of_the_flattened_rows(self):
        head = models.init_classifier(jax.random.PRNGKey(0), 12, 4)
        bound = np.sqrt(6.0 / (12 + 4))  # Xavier-uniform
        assert head["kernel"].shape == (12, 4) and float(jnp.max(jnp.abs(head["kernel"]))) <= bound
        np.testing.assert_array_equal(head["bias"], np.zeros(4))
        head = {**head, "bias": jnp.arange(4.0) / 10}
        z = np.random.default_rng(1).standard_normal((5, 2, 3, 2)).astype(np.float32)
        probs = self.variant(models.classifier_probs)(head, z)
        chex.assert_shape(probs, (5, 4))
        assert probs.dtype == jnp.float32
        logits = z.reshape(5, 12).astype(np.float64) @ np.asarray(head["kernel"], np.float64) + np.asarray(head["bias"])
        expected = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), rtol=1e-5)
