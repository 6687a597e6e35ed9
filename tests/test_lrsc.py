"""LRSC: distillation and InfoNCE terms against numpy, episode sampling, MAML (vmap vs sequential, first vs
second order), the teacher, the class split, and a small end-to-end run."""
from unittest import mock

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from conftest import numpy_ridge_coefficients

import jaxsc
from jaxsc import data, losses, metrics
from jaxsc._src import cli
from jaxsc._src.methods import lrsc
from jaxsc.models import ConvAutoencoder


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class DistillationTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_heat_kernel_matches_numpy(self):
        t = _rand(7, 3)
        d = ((t[:, None, :].astype(np.float64) - t[None]) ** 2).sum(-1)
        w = self.variant(lambda a: losses.heat_kernel_weights(a, 2.0))(t)
        np.testing.assert_allclose(w, np.exp(-d / 2.0) * (1 - np.eye(7)), rtol=1e-4, atol=1e-6)
        median = np.median(d[~np.eye(7, dtype=bool)])
        np.testing.assert_allclose(self.variant(losses.heat_kernel_weights)(t),
                                   np.exp(-d / median) * (1 - np.eye(7)), rtol=1e-4, atol=1e-6)
        rows = self.variant(lambda a: losses.heat_kernel_weights(a, row_normalize=True))(t)
        np.testing.assert_allclose(rows.sum(1), 1.0, rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_weighted_locality_equals_the_explicit_sum(self):
        z, w = _rand(6, 4, seed=1), np.abs(_rand(6, 6, seed=2))  # not symmetric on purpose
        explicit = sum(w[i, j] * np.sum((z[i].astype(np.float64) - z[j]) ** 2)
                       for i in range(6) for j in range(6) if i != j)
        np.testing.assert_allclose(self.variant(losses.weighted_locality_loss)(z, w), explicit, rtol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_normalized_locality_is_the_sum_over_the_mean_pair_distance(self):
        z, w = _rand(6, 4, seed=1), np.abs(_rand(6, 6, seed=2))
        d = ((z[:, None, :].astype(np.float64) - z[None]) ** 2).sum(-1)
        off = ~np.eye(6, dtype=bool)
        expected = (w * d)[off].sum() / d[off].mean()
        value = self.variant(losses.normalized_locality_loss)(z, w)
        chex.assert_shape(value, ())
        assert value.dtype == jnp.float32
        np.testing.assert_allclose(value, expected, rtol=1e-4)
        # invariant to Z -> a Z + b: shrinking Z cannot lower it
        np.testing.assert_allclose(self.variant(losses.normalized_locality_loss)(0.01 * z + 3.0, w), expected,
                                   rtol=1e-3)
        uniform = (np.ones((6, 6)) - np.eye(6)) / 5  # row-normalised uniform weights: exactly n
        np.testing.assert_allclose(self.variant(losses.normalized_locality_loss)(z, uniform), 6.0, rtol=1e-5)

    def test_distillation_forms(self):
        z, w = jnp.asarray(_rand(6, 4, seed=1)), jnp.asarray(np.abs(_rand(6, 6, seed=2)))
        np.testing.assert_allclose(losses.distillation_loss(z, w, "sum"), losses.weighted_locality_loss(z, w))
        np.testing.assert_allclose(losses.distillation_loss(z, w), losses.normalized_locality_loss(z, w))
        # a collapsed Z (all rows equal) gives 0 and a finite gradient, not 0/0
        collapsed = jnp.ones((6, 4))
        assert float(losses.normalized_locality_loss(collapsed, w)) == 0.0
        assert bool(jnp.all(jnp.isfinite(jax.grad(losses.normalized_locality_loss)(collapsed, w))))
        with pytest.raises(ValueError, match="unknown distillation form 'ratio'"):
            losses.distillation_loss(z, w, "ratio")
        with pytest.raises(ValueError, match="unknown distill_form 'ratio'"):
            jaxsc.train.SelfExpressiveObjective(ConvAutoencoder((8, 8, 1), (3,), (2,)), distill_form="ratio")
        with pytest.raises(ValueError, match="unknown nce_reduction 'max'"):
            jaxsc.train.SelfExpressiveObjective(ConvAutoencoder((8, 8, 1), (3,), (2,)), nce_reduction="max")

    @chex.variants(with_jit=True, without_jit=True)
    def test_infonce_matches_a_log_softmax_reference(self):
        z, g = _rand(5, 3, seed=3), _rand(5, 3, seed=4)
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        gn = g / np.linalg.norm(g, axis=1, keepdims=True)
        logits = zn.astype(np.float64) @ gn.T / 0.3
        log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        value = self.variant(lambda a, b: losses.infonce_loss(a, b, 0.3))(z, g)
        chex.assert_shape(value, ())
        np.testing.assert_allclose(value, -np.mean(np.diag(log_softmax)), rtol=1e-5)
        total = self.variant(lambda a, b: losses.infonce_loss(a, b, 0.3, "sum"))(z, g)
        np.testing.assert_allclose(total, -np.sum(np.diag(log_softmax)), rtol=1e-5)

    def test_infonce_gradients_match_finite_differences(self):
        with jax.enable_x64(True):
            z, g = jnp.asarray(_rand(5, 3, seed=3), jnp.float64), jnp.asarray(_rand(5, 3, seed=4), jnp.float64)
            jax.test_util.check_grads(lambda a, b: losses.infonce_loss(a, b, 0.3), (z, g), order=1, modes=["rev"],
                                      atol=1e-5, rtol=1e-5)

    def test_infonce_gradient_is_finite_with_a_zero_row(self):
        # A sample whose latent code (or C Z row) is exactly zero, e.g. all ReLUs off: unit_rows keeps it zero
        # and its gradient finite (the gradient of a plain norm is 0/0 there).
        z, g = _rand(5, 3, seed=3), _rand(5, 3, seed=4)
        z[2] = 0.0
        grads = jax.grad(lambda a, b: losses.infonce_loss(a, b, 0.3), argnums=(0, 1))(jnp.asarray(z), jnp.asarray(g))
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in grads)
        np.testing.assert_allclose(losses.unit_rows(jnp.asarray(z))[2], 0.0)
        np.testing.assert_allclose(np.linalg.norm(losses.unit_rows(jnp.asarray(z)), axis=1)[[0, 1, 3, 4]], 1.0,
                                   rtol=1e-6)

    def test_errors_name_the_problem(self):
        with pytest.raises(ValueError, match=r"weights have shape \(3, 3\), expected \(4, 4\)"):
            losses.weighted_locality_loss(jnp.zeros((4, 2)), jnp.zeros((3, 3)))
        with pytest.raises(ValueError, match="must have the same shape"):
            losses.infonce_loss(jnp.zeros((4, 2)), jnp.zeros((3, 2)))
        with pytest.raises(ValueError, match="unknown InfoNCE reduction 'max'"):
            losses.infonce_loss(jnp.zeros((4, 2)), jnp.zeros((4, 2)), reduction="max")


def test_episode_indices_are_distinct_classes_and_members():
    y = np.repeat(np.arange(6), [12, 15, 20, 12, 30, 13])
    table, counts = lrsc._class_table(y)
    idx = np.asarray(lrsc.sample_episode_indices(jax.random.PRNGKey(0), jnp.asarray(table), jnp.asarray(counts),
                                                 n_way=3, per_class=10, episodes=4))
    assert idx.shape == (4, 3, 10)
    for episode in idx:
        classes = [set(y[row]) for row in episode]
        assert all(len(c) == 1 for c in classes) and len(set.union(*classes)) == 3
        assert all(len(set(row)) == 10 for row in episode)


def _episode_setup():
    model = ConvAutoencoder((8, 8, 1), (3,), (4,))
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 8, 8, 1)))["params"]
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 10, 8, 8, 1))
    w = jax.vmap(lambda t: losses.heat_kernel_weights(t, row_normalize=True))(jax.random.normal(
        jax.random.PRNGKey(2), (3, 10, 5)))
    return model, params, (x, w, x[::-1], w[::-1])


def test_meta_loss_vmap_equals_sequential_and_first_order_differs():
    model, params, episodes = _episode_setup()
    preset = lrsc.LRSCPreset(inner_lr=1e-2)
    # jitted: op by op, the second-order gradient compiles hundreds of small kernels (40 s on 2 cores)
    loss = jax.jit(lrsc.meta_loss, static_argnums=(0, 1))
    batched = loss(model, preset, params, episodes)
    sequential = loss(model, preset.replace(vmap_episodes=False), params, episodes)
    np.testing.assert_allclose(batched, sequential, rtol=1e-5)
    gradient = jax.jit(jax.grad(lrsc.meta_loss, argnums=2), static_argnums=(0, 1))
    second = gradient(model, preset, params, episodes)
    first = gradient(model, preset.replace(first_order=True), params, episodes)
    leaves = [(np.asarray(a), np.asarray(b)) for a, b in zip(jax.tree.leaves(second), jax.tree.leaves(first))]
    assert all(np.all(np.isfinite(a)) and np.all(np.isfinite(b)) for a, b in leaves)
    assert any(not np.allclose(a, b) for a, b in leaves)


def test_zero_diagonal_masks_self_representation():
    """Eq. 1's diag(C) = 0: with it, a C that is mostly the identity explains nothing in the self-expression
    term; the target stage's preset carries the constraint."""
    model, params, (x, w, _, _) = _episode_setup()
    preset = lrsc.LRSCPreset(distill=False)
    n = x.shape[1]
    identity = jnp.eye(n) + 1e-3
    masked = lrsc.episode_loss(model, preset, params, identity, x[0], w[0])
    expected = lrsc.episode_loss(model, preset.replace(zero_diagonal=False), params, identity - jnp.diag(
        jnp.diagonal(identity)), x[0], w[0]) + preset.w_reg * n * (1 + 1e-3) ** 2  # R(C) still sees diag(C)
    np.testing.assert_allclose(masked, expected, rtol=1e-5)
    free = lrsc.episode_loss(model, preset.replace(zero_diagonal=False), params, identity, x[0], w[0])
    assert float(free) < float(masked)
    assert preset.as_preset().zero_diagonal and not preset.replace(zero_diagonal=False).as_preset().zero_diagonal


def test_meta_step_lowers_the_meta_loss():
    model, params, episodes = _episode_setup()
    rate = lrsc.stable_inner_lr(model, lrsc.LRSCPreset(), params, episodes[0], episodes[1])
    preset = lrsc.LRSCPreset(meta_lr=1e-2, inner_lr=rate)
    optimizer = optax.adam(preset.meta_lr)
    before = float(lrsc.meta_loss(model, preset, params, episodes))
    state = optimizer.init(params)
    p = jax.tree.map(jnp.array, params)
    for _ in range(5):
        p, state, _ = lrsc.meta_step(model, preset, optimizer, p, state, episodes)
    assert float(lrsc.meta_loss(model, preset, p, episodes)) < before


def test_meta_train_stops_on_a_non_finite_meta_loss_and_the_step_bound_prevents_it():
    """An unbounded inner step far too large makes the meta-loss overflow; meta_train says so instead of returning
    NaNs. With the preset's bound on the step's length the same step size leaves the meta-loss finite."""
    model, params, _ = _episode_setup()
    x = np.random.default_rng(0).uniform(size=(60, 8, 8, 1)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    preset = lrsc.LRSCPreset(n_way=2, shots=2, episodes=2, meta_steps=4, inner_lr=1e30, distill=False,
                             first_order=True)
    no_teacher = np.zeros((60, 1), np.float32)
    with pytest.raises(FloatingPointError, match=r"\[meta\] loss became (nan|inf) by step \d; lower meta_lr"):
        lrsc.meta_train(model, params, x, y, no_teacher, preset.replace(inner_max_relative_step=None), verbose=False)
    bounded = lrsc.meta_train(model, params, x, y, no_teacher, preset, verbose=False)
    assert all(np.isfinite(loss) for _, loss in bounded.history)


def _numpy_norm(tree):
    """The global norm of a pytree, in float64."""
    return np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in jax.tree.leaves(tree)))


def _numpy_step_scale(params, grads, lr, max_relative_step):
    """min(1, rho ||theta|| / (lr ||g||)) over all leaves, in float64."""
    return min(1.0, max_relative_step * _numpy_norm(params) / (lr * _numpy_norm(grads)))


class InnerStepTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_inner_step_scale_bounds_the_step_length(self):
        params = {"a": _rand(3, 4), "b": _rand(5, seed=1)}
        grads = {"a": _rand(3, 4, seed=2), "b": _rand(5, seed=3)}
        scale_fn = self.variant(lrsc.inner_step_scale, static_argnums=3)
        for lr in (1e-4, 1e-2, 1.0):
            scale = scale_fn(params, grads, lr, 0.01)
            assert scale.shape == () and scale.dtype == jnp.float32
            np.testing.assert_allclose(scale, _numpy_step_scale(params, grads, lr, 0.01), rtol=1e-5)
        # a long step is shortened to exactly rho ||theta||; a short one is left as it is; None never bounds
        step = jax.tree.map(lambda g: 1.0 * scale_fn(params, grads, 1.0, 0.01) * g, grads)
        np.testing.assert_allclose(_numpy_norm(step), 0.01 * _numpy_norm(params), rtol=1e-5)
        assert float(scale_fn(params, grads, 1e-6, 0.01)) == 1.0
        assert float(scale_fn(params, grads, 1e6, None)) == 1.0
        assert np.isfinite(float(scale_fn(params, jax.tree.map(jnp.zeros_like, grads), 1.0, 0.01)))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("step", "exact")
    def test_inner_step_losses_match_one_explicit_step(self, inner_coef):
        """``step``: C = coef_init, then one gradient step on network and C; ``exact``: C = the closed-form
        minimiser of the latent terms for the episode's Z (numpy, row by row), then a step on the network only."""
        model, params, (x, w, _, _) = _episode_setup()
        preset = lrsc.LRSCPreset(inner_coef=inner_coef)
        rates = jnp.asarray([1e-3, 1e-1])
        losses_fn = self.variant(lambda p, x, w, r: lrsc.inner_step_losses.__wrapped__(model, preset, p, x, w, r))
        start, after = losses_fn(params, x, w, rates)
        assert after.shape == (2,) and after.dtype == jnp.float32

        def coef_of(e):
            if inner_coef == "step":
                return jnp.full((x.shape[1], x.shape[1]), preset.coef_init)
            z = np.asarray(model.apply({"params": params}, x[e], method="encode")).reshape(x.shape[1], -1)
            return jnp.asarray(numpy_ridge_coefficients(z, preset.w_reg / preset.w_se, True), jnp.float32)

        coefs = [coef_of(e) for e in range(3)]
        expected_start = np.mean([lrsc.episode_loss(model, preset, params, coefs[e], x[e], w[e]) for e in range(3)])
        np.testing.assert_allclose(start, expected_start, rtol=1e-4)
        for rate, value in zip(rates, after):
            grads = jax.grad(lrsc.episode_loss, argnums=(2, 3))
            adapted = []
            for e in range(3):
                g_net, g_coef = grads(model, preset, params, coefs[e], x[e], w[e])
                scale = _numpy_step_scale(params, g_net, float(rate), preset.inner_max_relative_step)
                net = jax.tree.map(lambda p, g: p - rate * scale * g, params, g_net)
                coef = coefs[e] - rate * g_coef if inner_coef == "step" else coefs[e]
                adapted.append(lrsc.episode_loss(model, preset, net, coef, x[e], w[e]))
            np.testing.assert_allclose(value, np.mean(adapted), rtol=1e-4)


def test_preset_rejects_an_exact_inner_coef_it_cannot_solve():
    with pytest.raises(ValueError, match="unknown inner_coef"):
        lrsc.LRSCPreset(inner_coef="newton")
    with pytest.raises(ValueError, match="penalty='l2'"):
        lrsc.LRSCPreset(penalty="l1")
    l1 = lrsc.LRSCPreset.for_penalty("l1")
    assert (l1.penalty, l1.inner_coef) == ("l1", "step")
    assert lrsc.LRSCPreset.for_penalty("l2") == lrsc.LRSCPreset()
    with pytest.raises(ValueError, match="meta_pretrain_steps"):
        lrsc.LRSCPreset(meta_pretrain_steps=-1)
    with pytest.raises(ValueError, match="inner_max_relative_step must be > 0 or None"):
        lrsc.LRSCPreset(inner_max_relative_step=0.0)


def test_stable_inner_lr_is_the_largest_grid_rate_that_lowers_the_loss():
    model, params, (x, w, _, _) = _episode_setup()
    preset = lrsc.LRSCPreset()
    rate = lrsc.stable_inner_lr(model, preset, params, x, w)
    grid = lrsc.INNER_LR_GRID
    start, after = lrsc.inner_step_losses(model, preset, params, x, w, jnp.asarray(grid))
    chosen = grid.index(rate)
    assert np.all(np.asarray(after)[:chosen + 1] < float(start))
    assert chosen == len(grid) - 1 or not float(after[chosen + 1]) < float(start)
    with pytest.raises(ValueError, match="needs a numeric preset.inner_lr"):
        lrsc.meta_loss(model, preset, params, (x, w, x, w))
    with pytest.raises(ValueError, match="no inner step of size >= 1e-08 lowers the episode loss \\(nan\\)"):
        lrsc.stable_inner_lr(model, preset, params, x.at[0, 0, 0, 0, 0].set(jnp.nan), w)


def test_split_external_by_classes():
    ds = data.load("digits")
    target, ext = cli.split_external(ds, [0, 1, 2, 3, 4])
    assert set(np.unique(target.y)) == set(range(5)) and len(target.y) + len(ext.y) == len(ds.y)
    assert set(np.unique(ext.y)) == set(range(5, 10))
    with pytest.raises(ValueError, match="needs external data"):
        cli.split_external(ds, None)


def test_lrsc_end_to_end_on_digits(capsys):
    ds = data.load("digits")
    target = ds.y < 3
    # first-order meta-gradients: the second-order ones are tested above and take 3x the compile time. The CLI
    # run below gets the same settings and samples, so it reuses the compiled steps.
    small = dict(teacher_steps=20, meta_steps=3, pretrain_steps=60, finetune_steps=15, kernels=(3, 3),
                 channels=(8, 16), n_way=3, shots=4, episodes=2, first_order=True)
    model = jaxsc.LRSC(n_clusters=3, seed=0, **small).fit(ds.x[target], external=(ds.x[~target], ds.y[~target]))
    assert model.labels_.shape == (np.sum(target),) and len(model.meta_history_) > 0
    assert metrics.accuracy(ds.y[target], model.labels_) > 0.6
    assert model.seconds_["meta_step"] > 0
    coef = model.coef_ - np.diag(np.diag(model.coef_))  # diagnostics: RMS of C off its diagonal and of Z
    np.testing.assert_allclose(model.diagnostics_["coef_offdiag_rms"], np.sqrt(np.mean(np.square(coef))), rtol=1e-5)
    assert model.diagnostics_["latent_rms"] > 0 and 0 <= model.diagnostics_["inactive_latent"] < 1
    assert model.diagnostics_["inner_lr"] in lrsc.INNER_LR_GRID
    assert 0 <= model.diagnostics_["inactive_latent_after_meta"] < 1  # the meta-learned encoder, before the target
    with pytest.raises(ValueError, match="differ in shape"):
        jaxsc.LRSC(n_clusters=3).fit(ds.x[:20], external=(np.zeros((10, 4)), np.zeros(10)))
    # Episodes that the external classes cannot fill fail before any training, naming the numbers.
    with pytest.raises(ValueError, match="2 x shots = 20 samples; got 7 classes, the smallest with 12"):
        few = np.concatenate([np.flatnonzero(ds.y == c)[:12] for c in range(3, 10)])
        jaxsc.LRSC(n_clusters=3, shots=10).fit(ds.x[target][:30], external=(ds.x[few], ds.y[few]))
    code = cli.main(["run", "--method", "lrsc", "--dataset", "digits", "--target-classes", "0-2", "--seeds", "0",
                     "--quiet"] + [f"--set={k}={v}" for k, v in {**small, "kernels": [3, 3], "channels": [8, 16],
                                                                  "first_order": "true"}.items()])
    printed = capsys.readouterr().out
    assert code == 0 and "lrsc digits[0,1,2] seed 0: ACC" in printed
    assert "lrsc mean+-std: ACC" in printed and "| max: ACC" in printed


def test_inactive_fraction_counts_coordinates_zero_for_every_sample():
    latent = np.ones((3, 2, 2), np.float32)
    latent[:, 0, 1] = 0.0  # zero for every sample
    latent[1, 1, 0] = 0.0  # zero for one sample only
    assert lrsc.inactive_fraction(latent) == 0.25
    assert lrsc.inactive_fraction(np.zeros((4, 5))) == 1.0


def test_rows_that_distil_share_one_teacher_per_seed():
    ds = data.load("digits")
    target, ext = cli.split_external(ds, [0, 1, 2])
    target = target._replace(x=target.x[:90], y=target.y[:90])
    tiny = dict(teacher_steps=10, meta=False, pretrain_steps=20, finetune_steps=5, kernels=(3,), channels=(4,))
    cache = {}
    first = cli._run_lrsc("lrsc", target, ext, [0], {**tiny, "nce": False}, cache, verbose=False)["seeds"][0]
    second = cli._run_lrsc("lrsc", target, ext, [0], tiny, cache, verbose=False)["seeds"][0]
    assert len(cache) == 1 and not first["teacher_reused"] and second["teacher_reused"]
    assert second["seconds_teacher"] == first["seconds_teacher"] > 0
    # Features passed in give the run that computes them itself.
    preset = lrsc.LRSCPreset().replace(**tiny)
    own = lrsc.fit_lrsc(target.x, 3, ext.x, ext.y, preset, seed=0, verbose=False)
    features = next(iter(cache.values()))[0]
    given = lrsc.fit_lrsc(target.x, 3, ext.x, ext.y, preset, seed=0, verbose=False, teacher=features)
    np.testing.assert_array_equal(own.labels, given.labels)
    np.testing.assert_allclose(own.coef, given.coef, atol=1e-6)
    # A dead encoder (Z = 0 for every sample) is reported, not silently clustered.
    with pytest.warns(RuntimeWarning, match="100.0% of the latent coordinates are zero"):
        with mock.patch.object(lrsc, "encode_in_batches", lambda model, params, x: np.zeros((len(x), 4))):
            dead = lrsc.fit_lrsc(target.x, 3, ext.x, ext.y, preset, seed=0, verbose=False, teacher=features)
    assert dead.diagnostics["inactive_latent"] == 1.0
    with pytest.raises(ValueError, match="teacher features for 5 external"):
        lrsc.fit_lrsc(target.x, 3, ext.x, ext.y, preset, teacher=(np.zeros((5, 8)), np.zeros((90, 8))))


def test_lrsc_preset_sums_infonce_over_samples_and_the_objective_gets_it():
    """Eq. 9 adds Eq. 8's per-sample term to losses summed over samples: the LRSC preset sums it; the
    DSC-family default stays the mean."""
    from jaxsc._src.api import build_objective
    model = ConvAutoencoder((8, 8, 1), (3,), (2,))
    assert build_objective(lrsc.LRSCPreset().as_preset(), model).nce_reduction == "sum"
    assert build_objective(lrsc.LRSCPreset(nce_reduction="mean").as_preset(), model).nce_reduction == "mean"
    assert jaxsc.presets.Preset(kernels=(3,), channels=(2,)).nce_reduction == "mean"
