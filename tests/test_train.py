import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsc import losses, models, train


@dataclasses.dataclass(frozen=True)
class Quadratic:
    """L(C) = ||C - T||^2 with Adam: converges, so the early stop must fire."""

    lr: float = 0.05

    def loss(self, params, _batch):
        value = jnp.sum(jnp.square(params["coef"] - 1.0))
        return value, {"value": value}

    def optimizer(self):
        return optax.adam(self.lr)

    def monitored(self, params):
        return params["coef"]


def _images(n=24, hw=8, seed=0):
    return jax.random.uniform(jax.random.PRNGKey(seed), (n, hw, hw, 1))


def _autoencoder():
    model = models.ConvAutoencoder((8, 8, 1), (3,), (4,))
    return model, model.init(jax.random.PRNGKey(1), _images(2))["params"]


@pytest.mark.parametrize("batch_size", [None, 8])
def test_pretraining_reduces_loss_and_is_repeatable(batch_size):
    model, params = _autoencoder()
    objective = train.ReconstructionObjective(model, 1e-2)
    x = _images()
    first = train.train(objective, params, x, 60, batch_size=batch_size, log_every=20, verbose=False,
                        key=jax.random.PRNGKey(3))
    again = train.train(objective, params, x, 60, batch_size=batch_size, log_every=20, verbose=False,
                        key=jax.random.PRNGKey(3))
    assert objective.loss(first.params, x)[0] < 0.5 * objective.loss(params, x)[0]
    assert [step for step, _ in first.history] == [20, 40, 60]
    jax.tree.map(np.testing.assert_array_equal, first.params, again.params)
    assert first.steps == 60 and not first.stopped_early
    # the caller's parameters were not donated
    assert np.isfinite(np.asarray(params["enc0_kernel"])).all()


def test_early_stop_is_exact_even_when_the_host_looks_rarely():
    params = {"coef": jnp.zeros((3, 3))}
    stop = train.EarlyStop(tol=1e-3, patience=2)
    stopped = train.train(Quadratic(), params, jnp.zeros((1,)), 5000, early_stop=stop, log_every=1000,
                          verbose=False)
    assert stopped.stopped_early and stopped.steps < 1000
    replay = train.train(Quadratic(), params, jnp.zeros((1,)), stopped.steps, verbose=False)
    np.testing.assert_array_equal(stopped.params["coef"], replay.params["coef"])


def test_a_stopped_step_keeps_parameters_loss_and_step_count():
    """Once ``calm`` reaches the patience the step selects the current parameters, loss, terms and step count (the
    optimiser's moments may advance: they are not part of a result)."""
    objective, params = Quadratic(), {"coef": jnp.arange(9.0).reshape(3, 3)}
    stop, data = train.EarlyStop(tol=1e-3, patience=2), jnp.zeros((1,))
    state = train.TrainState(params, objective.optimizer().init(params), jnp.asarray(7), jnp.asarray(2),
                             jnp.asarray(1.5), {"value": jnp.asarray(1.5)})
    kept = jax.tree.map(np.asarray, state)
    after = train.train_step(state, data, jax.random.PRNGKey(0), objective, None, stop)
    np.testing.assert_array_equal(after.params["coef"], kept.params["coef"])
    assert (int(after.step), int(after.calm), float(after.loss), float(after.aux["value"])) == (7, 2, 1.5, 1.5)
    moving = train.train_step(after._replace(calm=jnp.asarray(0)), data, jax.random.PRNGKey(0), objective, None, stop)
    assert int(moving.step) == 8 and not np.array_equal(moving.params["coef"], kept.params["coef"])


def test_separate_learning_rates_for_coef_and_network():
    model, ae = _autoencoder()
    objective = train.SelfExpressiveObjective(model, w_se=1.0, lr_net=1e-3, lr_coef=0.0)
    params = train.init_self_expressive_params(ae, 24, 1e-4)
    out = train.train(objective, params, _images(), 3, verbose=False)
    np.testing.assert_array_equal(out.params["coef"], params["coef"])
    assert not np.allclose(out.params["autoencoder"]["enc0_kernel"], ae["enc0_kernel"])


def test_progress_line_names_the_terms_of_the_last_step(capsys):
    model, ae = _autoencoder()
    objective = train.SelfExpressiveObjective(model, w_se=2.0)
    out = train.train(objective, train.init_self_expressive_params(ae, 24, 1e-4), _images(), 2, log_every=2,
                      desc="ft")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"[ft] step 2/2 loss {out.history[-1][1]:.6g} (rec ") and ", reg " in line
    assert ", se " in line and " elapsed " in line
    # a single-term objective (pretraining): the loss alone
    train.train(train.ReconstructionObjective(model), ae, _images(), 1, desc="pre")
    assert " (rec" not in capsys.readouterr().err


def test_dsc_loss_terms_and_gradient():
    model, ae = _autoencoder()
    x = _images()
    params = train.init_self_expressive_params(ae, 24, 0.0)
    params["coef"] = 0.01 * jax.random.normal(jax.random.PRNGKey(4), (24, 24))
    objective = train.SelfExpressiveObjective(model, w_rec=2.0, w_reg=3.0, w_se=5.0)
    loss, terms = objective.loss(params, x)
    z, zc, x_hat = train.self_expressive_forward(model, params, x)
    np.testing.assert_allclose(terms["se"], np.sum((np.asarray(z) - np.asarray(params["coef"]) @ np.asarray(z)) ** 2),
                               rtol=1e-4)
    np.testing.assert_allclose(terms["reg"], np.sum(np.asarray(params["coef"]) ** 2), rtol=1e-5)
    np.testing.assert_allclose(loss, 2 * terms["rec"] + 3 * terms["reg"] + 5 * terms["se"], rtol=1e-6)
    # dL_se/dC = -2 (Z - C Z) Z^T
    se_only = train.SelfExpressiveObjective(model, w_rec=0.0, w_reg=0.0, w_se=1.0)
    grad = jax.grad(lambda p: se_only.loss(p, x)[0])(params)["coef"]
    z = np.asarray(z, np.float64)
    expected = -2 * (z - np.asarray(params["coef"], np.float64) @ z) @ z.T
    np.testing.assert_allclose(grad, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("w_raw, zero_diagonal", [(0.0, False), (0.4, True)])
def test_ridge_start_minimises_the_quadratic_terms_in_c(w_raw, zero_diagonal):
    """C = argmin w_se ||Z - C Z||^2 + w_raw ||X - C X||^2 + w_reg ||C||^2 (diag(C) = 0 when constrained), against
    numpy's row-by-row ridge on [sqrt(w_se) Z, sqrt(w_raw) X]; the gradient of those terms vanishes there. 72
    samples: 64 latent columns (Woodbury's form), with the raw pixels 128 (the n x n form)."""
    from conftest import numpy_ridge_coefficients

    model, ae = _autoencoder()
    x = _images(72)
    objective = train.SelfExpressiveObjective(model, w_reg=0.3, w_se=2.0, w_raw=w_raw, zero_diagonal=zero_diagonal)
    coef = jax.jit(train.ridge_start, static_argnums=0)(objective, ae, x)
    chex.assert_shape(coef, (72, 72))
    assert coef.dtype == jnp.float32
    z = np.asarray(train.self_expressive_forward(model, {"autoencoder": ae, "coef": coef}, x)[0], np.float64)
    rows = np.concatenate([np.sqrt(2.0) * z, np.sqrt(w_raw) * np.asarray(x, np.float64).reshape(72, -1)], axis=1)
    np.testing.assert_allclose(coef, numpy_ridge_coefficients(rows, 0.3, zero_diagonal), atol=2e-4)
    quadratic = dataclasses.replace(objective, w_rec=0.0)
    grad = jax.grad(lambda c: quadratic.loss({"autoencoder": ae, "coef": c}, x)[0])(coef)
    if zero_diagonal:
        grad = models.without_diagonal(grad)
    assert float(jnp.max(jnp.abs(grad))) < 1e-3 * float(jnp.max(jnp.abs(coef)))
    with pytest.raises(ValueError, match="ridge start needs penalty='l2' with w_reg > 0"):
        train.ridge_start(dataclasses.replace(objective, penalty="l1"), ae, x)
    with pytest.raises(ValueError, match="w_reg=0.0"):
        train.ridge_start(dataclasses.replace(objective, w_reg=0.0), ae, x)
    with pytest.raises(ValueError, match=r"coef_init must be a number or an \(72, 72\) array"):
        train.init_self_expressive_params(ae, 72, coef[:3])
    if w_raw:  # 128 columns for 72 samples: with diag(C) free each sample would express itself
        with pytest.warns(UserWarning, match=r"ridge start with diag\(C\) free and 128 columns .* for 72 samples"):
            start = train.ridge_start(dataclasses.replace(objective, zero_diagonal=False), ae, x)
        off_diagonal = float(jnp.mean(jnp.abs(models.without_diagonal(start))))
        assert float(jnp.mean(jnp.diagonal(start))) > 20 * off_diagonal  # close to C = I


@pytest.mark.parametrize("zero_diagonal", [False, True])
def test_given_c_is_donated_and_the_rest_copied(zero_diagonal):
    """``give_sample_matrices``: the caller's C is written over by the loop (deleted afterwards: no second n x n
    array alive through the run), the network's leaves are copied as always, and training is unchanged."""
    model, ae = _autoencoder()
    x = _images()
    objective = train.SelfExpressiveObjective(model, zero_diagonal=zero_diagonal)
    kept = train.train(objective, train.init_self_expressive_params(ae, 24, 1e-4), x, 3, verbose=False)
    params = train.init_self_expressive_params(ae, 24, 1e-4)
    given = train.train(objective, params, x, 3, verbose=False, give_sample_matrices=True)
    assert params["coef"].is_deleted()
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(params["autoencoder"]))
    chex.assert_trees_all_close(kept.params, given.params)


def test_distillation_term_from_teacher_features_or_precomputed_weights():
    """``{'teacher': T}`` builds the row-normalised heat kernel W in the loss; ``{'teacher_weights': W}`` uses W as
    given: the same loss and gradient. Without either the message names both keys."""
    model, ae = _autoencoder()
    x = _images()
    params = train.init_self_expressive_params(ae, 24, 1e-3)
    teacher = jax.random.normal(jax.random.PRNGKey(5), (24, 6))
    objective = train.SelfExpressiveObjective(model, w_distill=0.7)
    weights = losses.heat_kernel_weights(teacher, row_normalize=True)
    value = jax.value_and_grad(lambda p, batch: objective.loss(p, batch)[0])
    from_features = value(params, {"x": x, "teacher": teacher})
    from_weights = jax.jit(value)(params, {"x": x, "teacher_weights": weights})
    z = train.self_expressive_forward(model, params, x)[0]
    np.testing.assert_allclose(objective.loss(params, {"x": x, "teacher_weights": weights})[1]["distill"],
                               losses.weighted_locality_loss(z, weights), rtol=1e-5)  # the default form "sum"
    chex.assert_trees_all_close(from_features, from_weights, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="'teacher': ...} \\(or the precomputed heat kernel as .*'teacher_weights'"):
        objective.loss(params, {"x": x})


def test_bad_arguments():
    model, ae = _autoencoder()
    objective = train.ReconstructionObjective(model)
    with pytest.raises(ValueError, match="batch_size must lie in 1..24"):
        train.train(objective, ae, _images(), 1, batch_size=100, verbose=False)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        train.train(objective, ae, _images(), -1, verbose=False)
    with pytest.raises(ValueError, match="unknown penalty"):
        train.SelfExpressiveObjective(model, penalty="l0")


def test_diverging_loss_raises():
    model, ae = _autoencoder()
    x = _images() * jnp.inf
    with pytest.raises(FloatingPointError, match="loss became"):
        train.train(train.ReconstructionObjective(model), ae, x, 2, log_every=1, verbose=False)


def test_adam_compact_matches_adam_and_halves_the_state():
    import optax

    params = {"c": jax.random.normal(jax.random.PRNGKey(0), (6, 6))}
    grad_fn = jax.grad(lambda p: jnp.sum(jnp.sin(p["c"]) ** 2))
    reference, compact = optax.adam(1e-2), train.adam_compact(1e-2, jnp.float32)
    p_ref, p_cmp = params, params
    s_ref, s_cmp = reference.init(params), compact.init(params)
    for _ in range(5):
        u, s_ref = reference.update(grad_fn(p_ref), s_ref)
        p_ref = optax.apply_updates(p_ref, u)
        u, s_cmp = compact.update(grad_fn(p_cmp), s_cmp)
        p_cmp = optax.apply_updates(p_cmp, u)
    np.testing.assert_allclose(p_cmp["c"], p_ref["c"], rtol=1e-5, atol=1e-6)  # float32 state: the same Adam
    bf16 = train.adam_compact(1e-2).init(params)
    assert bf16.mu["c"].dtype == jnp.bfloat16 and bf16.nu["c"].dtype == jnp.bfloat16


def test_compact_coef_state_shrinks_the_compiled_step():
    model, ae = _autoencoder()
    x = _images()
    n = x.shape[0]
    sizes = {}
    for dtype in (None, "bfloat16"):
        objective = train.SelfExpressiveObjective(model, coef_state_dtype=dtype)
        params = train.init_self_expressive_params(ae, n, 1e-4)
        opt_state = objective.optimizer().init(params)
        sizes[dtype] = sum(leaf.nbytes for leaf in jax.tree.leaves(opt_state) if leaf.shape == (n, n))
        out = train.train(objective, params, x, 3, verbose=False)
        assert bool(jnp.all(jnp.isfinite(out.params["coef"])))
    assert sizes["bfloat16"] * 2 == sizes[None]
    with pytest.raises(ValueError, match="coef_state_dtype"):
        train.SelfExpressiveObjective(model, coef_state_dtype="int8")


def test_a_step_compiled_ahead_from_shapes_trains_as_the_jitted_step(monkeypatch):
    model, params = _autoencoder()
    objective, x = train.ReconstructionObjective(model, 1e-2), _images()
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (params, x))
    step = train.compile_train_step(objective, *abstract, batch_size=8)
    executable, runs = step._executable.result(), []
    monkeypatch.setattr(step._executable, "result", lambda: lambda **kw: runs.append(1) or executable(**kw))
    ahead = train.train(objective, params, x, 12, batch_size=8, key=jax.random.PRNGKey(3), verbose=False,
                        compiled_step=step)
    assert len(runs) == 12  # every step ran the compilation
    jitted = train.train(objective, params, x, 12, batch_size=8, key=jax.random.PRNGKey(3), verbose=False)
    jax.tree.map(np.testing.assert_array_equal, ahead.params, jitted.params)
    # another batch size is another step: the jitted one runs, as without compiled_step
    other = train.train(objective, params, x, 12, batch_size=6, key=jax.random.PRNGKey(3), verbose=False,
                        compiled_step=step)
    assert len(runs) == 12 and other.steps == 12
    # data of another shape: the jitted step too
    train.train(objective, params, _images(n=20), 2, batch_size=8, verbose=False, compiled_step=step)
    assert len(runs) == 12
