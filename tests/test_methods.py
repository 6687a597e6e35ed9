"""Methods as settings of one objective: terms, presets, estimators, CLI, and the large-scale path."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

import jaxsc
from conftest import benchmark_module, digits_subset
from jaxsc import data, losses, metrics, presets, train
from jaxsc._src import api, cli
from jaxsc._src.methods.out_of_sample import encode_in_batches, nearest_neighbor_labels
from jaxsc.models import ConvAutoencoder, MLPAutoencoder, classifier_probs


def _setup(n=12, hw=8, k=3):
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, hw, hw, 1))
    model = ConvAutoencoder((hw, hw, 1), (3,), (4,))
    ae = model.init(jax.random.PRNGKey(1), x[:2])["params"]
    params = train.init_self_expressive_params(ae, n, 0.0, latent_dim=4 * 4 * 4, n_clusters=k,
                                               key=jax.random.PRNGKey(2))
    params["coef"] = 0.05 * jax.random.normal(jax.random.PRNGKey(3), (n, n))
    return model, params, x


def test_objective_sums_the_documented_terms():
    model, params, x = _setup()
    objective = train.SelfExpressiveObjective(model, w_rec=1.5, w_reg=0.1, w_se=2.0, laplacian=True, w_raw=0.5,
                                              w_graph=0.7, w_label=0.3, graph_form="hinge", label_threshold=0.0,
                                              zero_diagonal=True)
    masked = np.asarray(params["coef"]) * (1 - np.eye(12))
    params = objective.constrain(params)  # what the training loop does first: diag(C) = 0
    np.testing.assert_array_equal(params["coef"], masked)
    loss, terms = objective.loss(params, x)
    assert set(terms) == {"rec", "reg", "se", "raw", "graph", "label"}
    z, zc, x_hat = train.self_expressive_forward(model, params, x)
    rows = np.asarray(x).reshape(12, -1)
    probs = classifier_probs(params["head"], z)
    np.testing.assert_allclose(terms["rec"], losses.laplacian_reconstruction_loss(x, x_hat, masked), rtol=1e-5)
    np.testing.assert_allclose(terms["raw"], np.sum((rows - masked @ rows) ** 2), rtol=1e-4)
    np.testing.assert_allclose(terms["reg"], np.sum(masked ** 2), rtol=1e-5)
    np.testing.assert_allclose(terms["graph"], losses.pseudo_graph_hinge(probs, losses.coefficient_similarity(
        masked)), rtol=1e-5)
    np.testing.assert_allclose(terms["label"], -np.sum(np.log(np.asarray(probs).max(1))), rtol=1e-5)
    expected = 1.5 * terms["rec"] + 0.1 * terms["reg"] + 2.0 * terms["se"] + 0.5 * terms["raw"] \
        + 0.7 * terms["graph"] + 0.3 * terms["label"]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    # the head is trained: its gradient is non-zero
    grads = jax.grad(lambda p: objective.loss(p, x)[0])(params)
    assert float(jnp.abs(grads["head"]["kernel"]).max()) > 0


@dataclasses.dataclass(frozen=True)
class _MaskedInLoss:
    """diag(C) = 0 the way jaxsc did it before 2026-12-06: a masked copy of C at the start of the loss, so the
    diagonal gets no gradient and keeps its initial value."""

    inner: train.SelfExpressiveObjective

    def loss(self, params, batch):
        return self.inner.loss({**params, "coef": params["coef"] * (1 - jnp.eye(params["coef"].shape[0]))}, batch)

    def optimizer(self):
        return self.inner.optimizer()

    def monitored(self, params):
        return params["coef"]


def test_zero_diagonal_projection_trains_like_a_masked_loss():
    """Holding diag(C) at 0 by projection (the loss reads C as given, no masked n x n copy) takes the same steps
    off the diagonal as masking C inside the loss, and the diagonal stays exactly 0."""
    model, params, x = _setup()
    objective = train.SelfExpressiveObjective(model, w_se=2.0, laplacian=True, w_raw=0.5, w_graph=0.7, w_label=0.3,
                                              zero_diagonal=True)
    masked_objective = _MaskedInLoss(dataclasses.replace(objective, zero_diagonal=False))
    projected = train.train(objective, params, x, 5, verbose=False).params["coef"]
    masked = train.train(masked_objective, params, x, 5, verbose=False).params["coef"]
    np.testing.assert_array_equal(np.diagonal(projected), 0.0)
    np.testing.assert_array_equal(np.diagonal(masked), np.diagonal(params["coef"]))
    off = ~np.eye(12, dtype=bool)
    np.testing.assert_allclose(np.asarray(projected)[off], np.asarray(masked)[off], rtol=1e-5, atol=1e-7)
    assert np.abs(np.asarray(projected)[off] - np.asarray(params["coef"])[off]).max() > 1e-4  # C did move


def test_dsc_settings_compute_only_dsc_terms():
    model, params, x = _setup()
    del params["head"]
    loss, terms = train.SelfExpressiveObjective(model, w_se=3.0).loss(params, x)
    assert set(terms) == {"rec", "reg", "se"}
    with pytest.raises(ValueError, match="unknown graph_form 'siamese'"):
        train.SelfExpressiveObjective(model, graph_form="siamese")


@pytest.mark.parametrize("name, kernels, channels, weights, steps, post", [
    # SPEC section 1 (the DSC-Net scripts: 0.5 rec + reg1 ||C||^2 + reg2 0.5 ||Z - CZ||^2 -> 1 / 2 reg1 / reg2;
    # COIL: rec + reg1 ||C||^2 + reg2 0.5 ||Z - CZ||^2 -> 1 / reg1 / reg2 / 2)
    ("coil20", (3,), (15,), (1.0, 1.0, 75.0), 40, (0.04, 12, 8.0)),
    ("coil100", (5,), (50,), (1.0, 1.0, 15.0), 120, (0.04, 12, 8.0)),
    ("orl", (3, 3, 3), (3, 3, 5), (1.0, 2.0, 0.2), 700, (0.2, 3, 1.0)),
    ("eyaleb", (5, 3, 3), (10, 20, 30), (1.0, 2.0, 10 ** (38 / 10 - 3)), 50 + 25 * 38, (0.1, 10, 3.5)),
])
def test_dsc_presets_are_the_spec_table(name, kernels, channels, weights, steps, post):
    preset = presets.PRESETS["dsc"][name]
    assert (preset.kernels, preset.channels, preset.finetune_steps) == (kernels, channels, steps)
    np.testing.assert_allclose((preset.w_rec, preset.w_reg, preset.w_se), weights)
    np.testing.assert_allclose((preset.post.threshold, preset.post.subspace_dim, preset.post.power), post)


def test_methods_are_preset_changes():
    shape = (32, 32, 1)
    assert presets.get_preset("coil20", shape, "rgrl-sc").laplacian is False
    assert presets.get_preset("coil20", shape, "rgrl").laplacian is True
    # RGRL Eq. 6 and PSSC Eq. 4: diag(C) = 0; DSC-Net's scripts have no such constraint
    assert all(presets.get_preset("orl", shape, m).zero_diagonal for m in ("rgrl", "rgrl-sc", "pssc", "pssc-l"))
    assert not presets.get_preset("orl", shape, "dsc-l2").zero_diagonal
    pssc_l = presets.get_preset("orl", shape, "pssc-l")
    assert pssc_l.w_graph == 0 and pssc_l.w_label == 0 and pssc_l.zero_diagonal
    assert presets.get_preset("orl", shape, "pssc").w_graph == 1.0
    assert presets.get_preset("coil20", shape, "dsc-l1").penalty == "l1"
    # the ablations share the pretraining of their method, so benchmarks can reuse it
    for field in ("kernels", "channels", "pretrain_steps", "data_scale"):
        assert getattr(presets.get_preset("orl", shape, "rgrl"), field) == \
            getattr(presets.get_preset("orl", shape, "pssc-l"), field)
    derived = presets.get_preset(None, (12, 12, 1), "pssc")
    assert derived.kernels == (3,) and derived.w_graph == 1.0
    with pytest.raises(ValueError, match="unknown method 'rgrl-l3'"):
        presets.get_preset("orl", shape, "rgrl-l3")
    with pytest.raises(ValueError, match="unknown preset 'coil100' for rgrl"):
        presets.get_preset("coil100", shape, "rgrl")


@pytest.mark.parametrize("estimator", [jaxsc.RGRL, jaxsc.PSSC])
def test_estimators_cluster_digits(estimator):
    x, y = digits_subset()
    model = estimator(n_clusters=3, seed=0, pretrain_steps=300, finetune_steps=30).fit(x)
    assert model.labels_.shape == (120,)
    assert metrics.accuracy(y, model.labels_) > 0.8
    if estimator is jaxsc.PSSC:
        assert model.params_["head"]["kernel"].shape == (4 * 4 * 10, 3)


def test_vectors_get_the_mlp_autoencoder():
    x, y = digits_subset()
    rows = x.reshape(x.shape[0], -1)  # the same digits as 64-vectors
    derived = presets.derive_preset(rows.shape[1:], "rgrl")
    assert derived.kernels == () and derived.channels == () and derived.mlp_hidden == (500, 500, 2000)
    assert derived.laplacian and derived.pretrain_steps == 2000
    model = jaxsc.DSC(n_clusters=3, seed=0, mlp_hidden=(64, 64), pretrain_steps=300, finetune_steps=30).fit(rows)
    assert model.labels_.shape == (120,) and model.coef_.shape == (120, 120)
    assert metrics.accuracy(y, model.labels_) > 0.8
    with pytest.raises(ValueError, match=r"\(H, W, C\) images or \(D,\) vectors, got sample shape \(4, 4\)"):
        presets.derive_preset((4, 4))


def test_fit_needs_n_clusters_for_a_head():
    x, _ = digits_subset(per_class=5)
    preset = presets.get_preset(None, (8, 8, 1), "pssc")
    ae = api.pretrain(x, preset, steps=1, verbose=False)
    with pytest.raises(ValueError, match="pass n_clusters"):
        api.fit(x, preset, ae, steps=1, verbose=False)


def test_nearest_neighbor_labels_match_sklearn():
    rng = np.random.default_rng(0)
    reference, query = rng.standard_normal((50, 4)).astype(np.float32), rng.standard_normal((23, 4)).astype(np.float32)
    labels = rng.integers(0, 5, 50)
    expected = KNeighborsClassifier(n_neighbors=1).fit(reference, labels).predict(query)
    np.testing.assert_array_equal(nearest_neighbor_labels(reference, labels, query, batch=8), expected)


def test_encode_in_batches_equals_one_call():
    model = MLPAutoencoder(6, 2, (5,))
    x = np.random.default_rng(1).standard_normal((11, 6)).astype(np.float32)
    params = model.init(jax.random.PRNGKey(0), jnp.asarray(x[:2]))["params"]
    direct = model.apply({"params": params}, jnp.asarray(x), method="encode")
    np.testing.assert_allclose(encode_in_batches(model, params, x, batch=4), direct, rtol=1e-5, atol=1e-6)


def test_large_scale_path_labels_every_point():
    ds = data.union_of_subspaces(n_subspaces=3, dim=2, ambient_dim=20, n_per_subspace=200, seed=0)
    preset = jaxsc._src.methods.out_of_sample.large_scale_preset("rgrl", 3, 150).replace(
        pretrain_steps=200, finetune_steps=20)
    out = jaxsc.fit_large_scale(ds.x, 3, "rgrl", sample_size=150, seed=0, preset=preset, verbose=False)
    assert out.labels.shape == (600,) and out.sample_index.shape == (150,)
    np.testing.assert_array_equal(out.labels[out.sample_index], out.sample_labels)
    assert out.sample_coef.shape == (150, 150)  # the sample's C: clustering it again gives the sample's labels
    np.testing.assert_array_equal(jaxsc.cluster_coef(out.sample_coef, 3, preset.post, seed=0).labels,
                                  out.sample_labels)
    # the 450 points outside the sample are labelled consistently with the sample's clusters
    assert metrics.accuracy(ds.y, out.labels) > 0.9 * metrics.accuracy(ds.y[out.sample_index], out.sample_labels)
    with pytest.raises(ValueError, match="sample_size must lie in"):
        jaxsc.fit_large_scale(ds.x, 3, sample_size=601, verbose=False)


def test_cli_methods_and_subsample(capsys):
    assert cli.main(["methods"]) == 0
    assert "pssc-l" in capsys.readouterr().out
    code = cli.main(["run", "--method", "pssc", "--dataset", "digits", "--subsample", "300", "--seeds", "0",
                     "--set", "pretrain_steps=30", "--set", "finetune_steps=3", "--quiet"])
    assert code == 0
    assert "pssc digits seed 0: ACC" in capsys.readouterr().out


def test_terms_trace_reads_udll_locality_term_on_the_fits_prior_graph():
    """benchmarks/terms_trace.py on UDLL: the objective reads the prior graph that :func:`jaxsc.fit` builds
    (``api.finetune_data``); the terms add up to the loss and the locality term is w_local L_locality of Z."""
    x, _ = digits_subset(per_class=8)
    preset = presets.get_preset(None, x.shape[1:], "udll")
    model = api.build_autoencoder(preset, x.shape[1:])
    objective = api.build_objective(preset, model)
    ae = model.init(jax.random.PRNGKey(0), x[:2])["params"]
    params = train.init_self_expressive_params(ae, len(x), 1e-2)
    params["coef"] = params["coef"] + 1e-2 * jax.random.normal(jax.random.PRNGKey(2), params["coef"].shape)
    batch = api.finetune_data(preset, model, ae, x)
    assert set(batch) == {"x", "neighbor_index", "neighbor_weight"}
    assert batch["neighbor_index"].shape == (len(x), preset.neighbors)
    trace = benchmark_module("terms_trace").term_gradients(objective, batch)(params)
    assert "local" in trace
    loss, _ = objective.loss(params, batch)
    np.testing.assert_allclose(sum(float(v) for v, _ in trace.values()), float(loss), rtol=1e-5)
    z = model.apply({"params": params["autoencoder"]}, jnp.asarray(x), method="encode")
    np.testing.assert_allclose(float(trace["local"][0]), preset.w_local * float(
        losses.locality_loss(z, batch["neighbor_index"], batch["neighbor_weight"])), rtol=1e-5)
    assert float(trace["local"][1]) == 0.0  # the locality term reads Z only: it moves C through Z, not directly


def test_terms_trace_splits_the_coefficient_gradient_by_term():
    """benchmarks/terms_trace.py: each term's weighted value and C-gradient norm; together they are the loss and
    its gradient with respect to C (PSSC: every term, the head's included)."""
    x, _ = digits_subset(per_class=8)
    preset = presets.get_preset(None, x.shape[1:], "pssc").replace(w_reg=0.5, w_raw=0.1)
    model = api.build_autoencoder(preset, x.shape[1:])
    objective = api.build_objective(preset, model)
    ae = model.init(jax.random.PRNGKey(0), x[:2])["params"]
    params = train.init_self_expressive_params(ae, len(x), 1e-2, latent_dim=int(np.prod(
        model.apply({"params": ae}, x[:1], method="encode").shape[1:])), n_clusters=3, key=jax.random.PRNGKey(1))
    params["coef"] = params["coef"] + 1e-2 * jax.random.normal(jax.random.PRNGKey(2), params["coef"].shape)
    params = objective.constrain(params)  # PSSC's diag(C) = 0, as the training loop holds it
    trace = benchmark_module("terms_trace").term_gradients(objective, jnp.asarray(x))(params)
    assert set(trace) == {"rec", "reg", "se", "raw", "graph", "label"}
    loss, terms = objective.loss(params, jnp.asarray(x))
    np.testing.assert_allclose(sum(float(v) for v, _ in trace.values()), float(loss), rtol=1e-5)
    coef = np.asarray(params["coef"])
    np.testing.assert_allclose(float(trace["reg"][0]), 0.5 * np.sum(coef ** 2), rtol=1e-5)
    np.testing.assert_allclose(float(trace["reg"][1]), np.linalg.norm(2 * 0.5 * coef), rtol=1e-5)
    full = jax.grad(lambda c: objective.loss({**params, "coef": c}, jnp.asarray(x))[0])(params["coef"])
    parts = [jax.grad(lambda c, k=k: objective.term_weights()[k] * objective.loss(
        {**params, "coef": c}, jnp.asarray(x))[1][k])(params["coef"]) for k in trace]
    np.testing.assert_allclose(np.asarray(sum(parts)), np.asarray(full), rtol=1e-4, atol=1e-6)
    off = ~np.eye(len(x), dtype=bool)  # the trace's norms leave out the diagonal, which training projects away
    np.testing.assert_allclose([float(n) for _, n in trace.values()],
                               [np.linalg.norm(np.asarray(p)[off]) for p in parts], rtol=1e-4)
