"""SAI: distances against scipy, closeness and KL against numpy, the CNN autoencoder, and small end-to-end runs."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.distance import cdist

import jaxsc
from conftest import digits_subset
from jaxsc import losses, metrics, train
from jaxsc._src import cli
from jaxsc._src.methods.sai import SAIObjective, SAIPreset, build_sai_autoencoder, tfidf
from jaxsc.models import PoolConvAutoencoder


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class DistanceTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_distances_match_scipy(self):
        h, w = _rand(9, 5), _rand(4, 5, seed=1)
        for name, fn in losses.DISTANCES.items():
            value = self.variant(fn)(h, w)
            chex.assert_shape(value, (9, 4))
            assert value.dtype == jnp.float32
            np.testing.assert_allclose(value, cdist(h.astype(np.float64), w.astype(np.float64), name),
                                       rtol=1e-4, atol=1e-5, err_msg=name)

    def test_euclidean_gradient_is_finite_at_zero(self):
        h = jnp.ones((2, 3))
        grad = jax.grad(lambda a: losses.euclidean_distance(a, jnp.ones((1, 3))).sum())(h)
        assert bool(jnp.all(jnp.isfinite(grad)))


def _numpy_assignments(h, w, metric, r=2.0):
    h, w = h.astype(np.float64), w.astype(np.float64)
    z1 = cdist(h, w, "euclidean")
    q1 = np.maximum(z1.mean(1, keepdims=True) - z1, 0)
    z2 = cdist(h, w, metric)
    q2 = 1 / (1 + z2 ** 2)
    q2 /= q2.sum(1, keepdims=True)

    def normalize(q):
        p = q ** r / q.sum(0, keepdims=True)
        return p / p.sum(1, keepdims=True)

    return normalize(q1), normalize(q2)


class ClosenessTest(chex.TestCase):
    """The three building blocks of the assignments, each against its equation written out in numpy."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_hinge_and_student_closeness(self):
        z = np.abs(_rand(7, 4)).astype(np.float64)
        hinge = [[max(0.0, z[i].mean() - z[i, j]) for j in range(4)] for i in range(7)]  # Eq. 7
        kernel = 1.0 / (1.0 + z ** 2)  # Eq. 8
        for fn, expected in ((losses.hinge_closeness, hinge),
                             (losses.student_closeness, kernel / kernel.sum(1, keepdims=True))):
            q = self.variant(fn)(z.astype(np.float32))
            chex.assert_shape(q, (7, 4))
            assert q.dtype == jnp.float32
            np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-7, err_msg=fn.__name__)

    @chex.variants(with_jit=True, without_jit=True)
    def test_frequency_normalized(self):
        q = np.abs(_rand(7, 4)).astype(np.float64)
        q[0, 1] = 0.0  # a zero closeness stays a zero probability
        for power in (1.0, 2.0, 3.0):
            p = self.variant(lambda a, r=power: losses.frequency_normalized(a, r))(q.astype(np.float32))
            chex.assert_shape(p, (7, 4))
            assert p.dtype == jnp.float32
            frequency = q.sum(0)
            expected = np.array([[q[i, j] ** power / frequency[j] for j in range(4)] for i in range(7)])
            expected /= expected.sum(1, keepdims=True)
            np.testing.assert_allclose(p, expected, rtol=1e-4, atol=1e-7, err_msg=f"r = {power}")
            assert float(p[0, 1]) == 0.0


class AssignmentTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_assignments_and_kl_match_numpy(self):
        h, w = _rand(12, 4), _rand(3, 4, seed=2)
        for variant, metric in losses.SAI_VARIANTS.items():
            p1, p2 = self.variant(lambda a, b, m=metric: losses.sai_assignments(a, b, m))(h, w)
            e1, e2 = _numpy_assignments(h, w, metric)
            np.testing.assert_allclose(p1, e1, rtol=1e-4, atol=1e-6, err_msg=variant)
            np.testing.assert_allclose(p2, e2, rtol=1e-4, atol=1e-6, err_msg=variant)
            np.testing.assert_allclose(p1.sum(1), 1.0, rtol=1e-5)
            kl = self.variant(lambda a, b, m=metric: losses.sai_loss(a, b, m))(h, w)
            positive = e1 > 0
            assert not positive.all()  # P1 is sparse
            expected = np.sum(e1[positive] * (np.log(e1[positive]) - np.log(e2[positive])))
            np.testing.assert_allclose(kl, expected, rtol=1e-4)
            reverse = self.variant(lambda a, b, m=metric: losses.sai_loss(a, b, m, direction="target_first"))(h, w)
            expected = np.sum(e2 * (np.log(e2) - np.log(np.maximum(e1, 1e-12))))
            np.testing.assert_allclose(reverse, expected, rtol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_p1_target_trains_p2_towards_the_fixed_p1(self):
        h, w = _rand(12, 4), _rand(3, 4, seed=2)
        e1, e2 = _numpy_assignments(h, w, "cosine")
        positive = e1 > 0
        swapped = self.variant(lambda a, b: losses.sai_loss(a, b, "cosine", direction="target_first", target="p1"))
        np.testing.assert_allclose(swapped(h, w), np.sum(e1[positive] * np.log(e1[positive] / e2[positive])),
                                   rtol=1e-4)
        fixed_p1 = jnp.asarray(e1, jnp.float32)  # P1 a constant: the gradient is that of -sum P1 log P2

        def cross_entropy(a, b):
            return -jnp.sum(fixed_p1 * jnp.log(losses.sai_assignments(a, b, "cosine")[1]))

        for got, want in zip(jax.grad(swapped, argnums=(0, 1))(h, w), jax.grad(cross_entropy, argnums=(0, 1))(h, w)):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)
        paper_roles = jax.grad(lambda a, b: losses.sai_loss(a, b, "cosine"), argnums=1)(h, w)
        assert not np.allclose(paper_roles, jax.grad(swapped, argnums=1)(h, w), atol=1e-4)

    @chex.variants(with_jit=True, without_jit=True)
    def test_unsharpened_prediction_is_decs_objective_with_the_other_metrics_target(self):
        h, w = _rand(12, 4), _rand(3, 4, seed=2)
        z1, z2 = cdist(h.astype(np.float64), w, "euclidean"), cdist(h.astype(np.float64), w, "cityblock")
        q1 = np.maximum(z1.mean(1, keepdims=True) - z1, 0)
        q2 = 1 / (1 + z2 ** 2)
        got_q1, got_q2 = self.variant(lambda a, b: losses.sai_closeness(a, b, "cityblock"))(h, w)
        chex.assert_shape((got_q1, got_q2), (12, 3))
        np.testing.assert_allclose(got_q1, q1, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got_q2, q2 / q2.sum(1, keepdims=True), rtol=1e-4, atol=1e-7)
        e1, e2 = _numpy_assignments(h, w, "cityblock")
        dec = self.variant(lambda a, b: losses.sai_loss(a, b, "cityblock", direction="target_first", target="p1",
                                                        sharpen_prediction=False))(h, w)
        prediction = q2 / q2.sum(1, keepdims=True)  # DEC's q: no power, no frequency
        positive = e1 > 0
        np.testing.assert_allclose(dec, np.sum(e1[positive] * np.log(e1[positive] / prediction[positive])), rtol=1e-4)
        paper_roles = self.variant(lambda a, b: losses.sai_loss(a, b, "cityblock", sharpen_prediction=False))(h, w)
        prediction = q1 / q1.sum(1, keepdims=True)
        positive = prediction > 0
        np.testing.assert_allclose(paper_roles, np.sum(prediction[positive] * np.log(prediction[positive]
                                                                                      / e2[positive])), rtol=1e-4)

    def test_cosine_student_closeness_is_bounded(self):
        """max_j Q2_ij <= 1 / (1 + 0.2 (k - 1)) under the cosine distance, however far h moves (the docstring's
        reason why an unsharpened HOE prediction cannot match a sharp target)."""
        k = 10
        w = _rand(k, 4, seed=5)
        h = np.concatenate([w * 100.0, _rand(50, 4, seed=6) * 1e3])  # on the centres' rays and far away
        q2 = losses.sai_closeness(h, w, "cosine")[1]
        assert float(jnp.max(q2)) <= 1 / (1 + 0.2 * (k - 1)) + 1e-6

    def test_sai_loss_gradient_matches_finite_differences(self):
        with jax.enable_x64(True):
            h = jnp.asarray(_rand(6, 3, seed=3), jnp.float64)
            w = jnp.asarray(_rand(2, 3, seed=4) * 0.3, jnp.float64)  # two centres: P1 has no exact zeros here
            for metric in ("cosine", "cityblock"):
                for direction in losses.KL_DIRECTIONS:
                    for target in losses.SAI_TARGETS:
                        for sharpen in (True, False):
                            check_grads(lambda a, b: losses.sai_loss(a, b, metric, stop_target=False,
                                                                     direction=direction, target=target,
                                                                     sharpen_prediction=sharpen),
                                        (h, w), order=1, modes=["rev"], atol=1e-4, rtol=1e-4)

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="unknown metric 'manhattan'"):
            losses.sai_assignments(jnp.zeros((3, 2)), jnp.zeros((2, 2)), "manhattan")
        with pytest.raises(ValueError, match=r"centres must be \(k, 2\)"):
            losses.sai_assignments(jnp.zeros((3, 2)), jnp.zeros((2, 5)))
        with pytest.raises(ValueError, match="unknown KL direction 'both'"):
            losses.sai_loss(jnp.zeros((3, 2)), jnp.ones((2, 2)), direction="both")
        with pytest.raises(ValueError, match="unknown SAI target 'p3'"):
            losses.sai_loss(jnp.zeros((3, 2)), jnp.ones((2, 2)), target="p3")
        with pytest.raises(ValueError, match="unknown SAI variant 'hex'"):
            jaxsc.fit_sai(np.zeros((10, 4)), 2, "hex")


def test_pool_conv_autoencoder_shapes():
    model = PoolConvAutoencoder((28, 28, 1), 10)
    x = jnp.zeros((3, 28, 28, 1))
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    z = model.apply({"params": params}, x, method="encode")
    assert z.shape == (3, 10) and bool(jnp.all((z >= 0) & (z <= 1)))
    assert model.apply({"params": params}, x).shape == (3, 28, 28, 1)
    with pytest.raises(ValueError, match="divisible by 4"):
        PoolConvAutoencoder((30, 30, 1)).init(jax.random.PRNGKey(0), jnp.zeros((1, 30, 30, 1)))


def test_cnn_output_bias_starts_at_the_logit_of_the_mean_intensity():
    model = build_sai_autoencoder(SAIPreset(encoder="cnn"), (8, 8, 1), mean_intensity=0.12)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 8, 8, 1)))["params"]
    np.testing.assert_allclose(params["dec_convs_1"]["bias"], [np.log(0.12 / 0.88)], rtol=1e-6)
    # the other biases start at 0, so a zero code decodes to the sigmoid of that bias: the mean intensity
    decoded = model.apply({"params": params}, jnp.zeros((1, 10)), method="decode")
    np.testing.assert_allclose(decoded, np.full((1, 8, 8, 1), 0.12), rtol=1e-5)
    plain = build_sai_autoencoder(SAIPreset(encoder="cnn"), (8, 8, 1))  # default 0.5: logit 0
    assert float(plain.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))["params"]["dec_convs_1"]["bias"][0]) == 0


def test_stochastic_objective_gets_a_new_key_every_step_and_stop_check_stops():
    seen = []

    class Noisy:
        stochastic = True

        def loss(self, params, batch, key):
            noise = jax.random.normal(key, ())
            return jnp.sum(params["w"] ** 2) + 0 * noise, {"noise": noise}

        def optimizer(self):
            import optax
            return optax.sgd(0.1)

        def monitored(self, params):
            return None

    def check(params):
        seen.append(float(params["w"]))
        return len(seen) == 3

    objective = Noisy()
    out = train.train(objective, {"w": jnp.ones(())}, jnp.zeros((4, 1)), 50, log_every=2, verbose=False,
                      stop_check=check)
    assert out.steps == 6 and out.stopped_early and len(seen) == 3
    params = {"w": jnp.ones(())}
    state = train.TrainState(params, objective.optimizer().init(params), jnp.zeros((), jnp.int32),
                             jnp.zeros((), jnp.int32), jnp.zeros(()), {"noise": jnp.zeros(())})
    noises = []
    for _ in range(3):
        state = train.train_step(state, jnp.zeros((4, 1)), jax.random.PRNGKey(0), objective)
        noises.append(float(state.aux["noise"]))
    assert len(set(noises)) == 3


def test_sai_clusters_digits_and_reports_its_baseline():
    x, y = digits_subset(per_class=60)
    model = jaxsc.SAI(n_clusters=3, variant="hoe", seed=0, batch_size=32, pretrain_epochs=40, max_epochs=15).fit(x)
    assert model.labels_.shape == (180,) and model.kmeans_labels_.shape == (180,)
    assert 1 <= model.epochs_ <= 15
    assert metrics.accuracy(y, model.labels_) > 0.85
    assert model.params_["centres"].shape == (3, 10)


@pytest.mark.parametrize("roles", [{"direction": "target_first", "target": "p1"},
                                   {"direction": "target_first", "target": "p1", "sharpen_prediction": False}])
def test_sai_objective_trains_on_the_loss_of_its_roles(roles):
    model = build_sai_autoencoder(SAIPreset(hidden=(8,)), (6,))
    params = {"autoencoder": model.init(jax.random.PRNGKey(0), jnp.zeros((2, 6)))["params"],
              "centres": jnp.asarray(_rand(3, 10, seed=5))}
    x = jnp.asarray(_rand(5, 6, seed=6))
    objective = SAIObjective(model, "cosine", **roles)

    def per_sample(p):
        h = model.apply({"params": p["autoencoder"]}, x, method="encode")
        return losses.sai_loss(h, p["centres"], "cosine", **roles) / 5

    got = jax.grad(lambda p: objective.loss(p, x)[0])(params)
    chex.assert_trees_all_close(got, jax.grad(per_sample)(params), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("roles", [{}, {"direction": "target_first", "target": "p1"},
                                   {"direction": "target_first", "target": "p1", "sharpen_prediction": False}])
def test_sai_trace_describes_every_epoch_without_labels(roles):
    x, _ = digits_subset(per_class=60)
    preset = SAIPreset(batch_size=32, pretrain_epochs=5, max_epochs=4, tol=0.0, **roles)
    result = jaxsc.fit_sai(x, 3, "hot", preset, seed=1, verbose=False)
    assert [e.epoch for e in result.trace] == list(range(result.epochs + 1)) and result.epochs == 4
    assert result.trace[0].changed == 0.0
    rows = x.reshape(len(x), -1)
    h = np.asarray(build_sai_autoencoder(preset, rows.shape[1:]).apply(
        {"params": result.params["autoencoder"]}, rows, method="encode"))
    p1, _ = losses.sai_assignments(h, result.params["centres"], "correlation")
    p1 = np.asarray(p1)
    shares = np.bincount(result.labels, minlength=3) / len(x)
    last = result.trace[-1]
    np.testing.assert_array_equal(result.labels, p1.argmax(axis=1))
    np.testing.assert_allclose(last.sharpness, p1.max(axis=1).mean(), rtol=1e-5)
    np.testing.assert_allclose([last.smallest, last.largest], [shares.min(), shares.max()])
    np.testing.assert_allclose(last.embedding_norm, np.linalg.norm(h, axis=1).mean(), rtol=1e-5)
    kl = losses.sai_loss(jnp.asarray(h), result.params["centres"], "correlation", **roles) / len(x)
    np.testing.assert_allclose(last.kl, float(kl), rtol=1e-5)
    assert all(1 / 3 - 1e-6 <= e.sharpness <= 1 + 1e-6 and 0 <= e.changed <= 1 for e in result.trace)


def test_sai_cli_shares_the_dae_between_variants(capsys):
    shared = {}
    for method in ("sai-homo", "sai-hit"):
        result = cli.run_experiment(method, "digits", [0], overrides={"pretrain_epochs": 2, "max_epochs": 2},
                                    pretrained=shared, verbose=False)
        assert result["dae_kmeans"]["summary"]["acc"]["mean"] > 0.1
        start, end = result["seeds"][0]["trace"]["sharpness"]
        assert 0.1 <= min(start, end) and max(start, end) <= 1.0
    assert len(shared) == 1
    printed = capsys.readouterr().out
    assert "DAE+k-means: ACC" in printed  # the seed line
    summaries = [line.split(" mean+-std")[0].strip() for line in printed.splitlines() if "| max: ACC" in line]
    assert summaries == ["sai-homo", "DAE+k-means", "sai-hit", "DAE+k-means"]


def test_tfidf_matches_numpy_and_keeps_the_most_frequent_terms():
    counts = np.array([[3, 0, 1, 0], [0, 2, 0, 5], [1, 1, 0, 4]], dtype=np.float64)

    def reference(c):  # smooth idf, raw term counts, l2-normalised rows
        idf = np.log((1 + c.shape[0]) / (1 + (c > 0).sum(axis=0))) + 1
        w = c * idf
        return w / np.linalg.norm(w, axis=1, keepdims=True)

    np.testing.assert_allclose(tfidf(counts), reference(counts), rtol=1e-6)
    top = tfidf(counts, top_terms=2)  # totals 4, 3, 1, 9: terms 0 and 3
    np.testing.assert_allclose(top, reference(counts[:, [0, 3]]), rtol=1e-6)
    assert top.dtype == np.float32
    with pytest.raises(ValueError, match="top_terms"):
        tfidf(counts, top_terms=0)
