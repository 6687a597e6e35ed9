"""The memory plan of a training run: XLA's compiled plan on abstract arrays, and the clear failure."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsc import train
from jaxsc._src.train import loop
from jaxsc.models import ConvAutoencoder


def _problem(n, coef_state_dtype=None, **terms):
    model = ConvAutoencoder((8, 8, 1), (3,), (4,))
    ae = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 8, 8, 1)))["params"]
    params = train.init_self_expressive_params(ae, n, 1e-4)
    objective = train.SelfExpressiveObjective(model, 1.0, 1.0, 10.0, coef_state_dtype=coef_state_dtype, **terms)
    x = jax.random.uniform(jax.random.PRNGKey(1), (n, 8, 8, 1))
    return objective, params, x


def test_plan_counts_coefficients_and_optimizer_state():
    for dtype, per_entry in ((None, 12), ("bfloat16", 8)):  # C float32 + two Adam moments
        objective, params, x = _problem(64, dtype)
        plan = train.plan_train_memory(objective, params, x)
        assert plan.square_bytes == per_entry * 64 * 64
        assert plan.argument_bytes >= plan.square_bytes + x.size * 4
        assert plan.peak_bytes >= plan.argument_bytes
        assert plan.available_bytes is None or plan.available_bytes > 0


def test_plan_needs_no_concrete_arrays_and_grows_with_n():
    peaks = []
    for n in (64, 256):
        objective, params, x = _problem(n)
        shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (params, x))
        peaks.append(train.plan_train_memory(objective, *shapes).peak_bytes)
    assert peaks[1] - peaks[0] >= 12 * (256 ** 2 - 64 ** 2)


def test_check_names_the_bytes_and_the_options():
    objective, params, x = _problem(32)
    plan = train.plan_train_memory(objective, params, x)
    assert train.check_train_memory(plan._replace(available_bytes=10 * plan.peak_bytes)) is not None
    with pytest.raises(MemoryError, match=r"GiB.*--subsample.*mesh.*bfloat16"):
        train.check_train_memory(plan._replace(available_bytes=plan.peak_bytes // 2))


def test_train_refuses_a_run_that_does_not_fit(monkeypatch):
    objective, params, x = _problem(48)
    monkeypatch.setattr(loop, "available_memory", lambda device=None: 1000)
    with pytest.raises(MemoryError, match="needs about"):
        train.train(objective, params, x, 2, verbose=False)
    result = train.train(objective, params, x, 2, verbose=False, check_memory=False)
    assert result.steps == 2 and np.isfinite(result.history[-1][1])


def test_available_memory_reads_this_machine():
    free = train.available_memory()
    assert free is None or free > 0


def test_bfloat16_coef_state_adds_no_temporaries():
    """The compact Adam computes its update from the stored (rounded) moments: from the float32 ones, XLA kept a
    copy of C and of m beside the new values (2.5 n x n float32 arrays of temporaries, not 1)."""
    temps = {}
    for dtype in (None, "bfloat16"):
        objective, params, x = _problem(512, dtype)
        temps[dtype] = train.plan_train_memory(objective, params, x).temp_bytes
    assert temps["bfloat16"] <= temps[None], temps


def test_zero_diagonal_raw_term_and_infonce_temporaries():
    """diag(C) = 0 held by projection (before 2026-12-06 a masked copy of C in the loss: 1.7 n x n float32 arrays
    more in XLA's plan) and the raw-space term's C X taken in the same product as C Z (before: 1.0 more) add no
    n x n temporary; InfoNCE adds its logits only."""
    n = 512
    square = 4 * n * n
    plain = train.plan_train_memory(*_problem(n)).temp_bytes
    # the raw term's n x 128 rows [Z, X] and their gradient are a quarter of C each at this n
    for terms in ({"zero_diagonal": True}, {"w_raw": 1.0}, {"zero_diagonal": True, "w_raw": 1.0}):
        assert train.plan_train_memory(*_problem(n, **terms)).temp_bytes <= plain + 0.5 * square, terms
    # LRSC's InfoNCE: its logits, not also an n x n log-softmax for their diagonal (2.2 before 2026-12-06)
    assert train.plan_train_memory(*_problem(n, w_nce=1.0)).temp_bytes <= plain + 1.5 * square


def test_laplacian_reconstruction_temporaries():
    """RGRL's relation-weighted reconstruction keeps one n x n array, the Gram matrix X X_hat^T, for its gradient
    (its custom VJP then forms W for the product W X: 1.1 n x n float32 arrays in all at n = 1024; autodiff of
    W X_hat, the form before 2026-12-06, 1.0 here and more where D is large: 4.6 against 2.0 for the term alone
    at COIL20's n and D)."""
    n = 1024
    plain = train.plan_train_memory(*_problem(n)).temp_bytes
    assert train.plan_train_memory(*_problem(n, laplacian=True)).temp_bytes <= plain + 1.25 * 4 * n * n


def test_pseudo_graph_contrastive_temporaries():
    """PSSC's contrastive pseudo-graph term, computed in blocks of rows by a custom VJP, adds dL/dS and block-sized
    arrays (blocks of 256 rows: a quarter of C each at n = 1024) to a step's plan; autodiff of the whole n x n
    expression added 6.0 n x n float32 arrays."""
    n = 1024
    objective, params, x = _problem(n, w_graph=1.0)
    params = train.init_self_expressive_params(params["autoencoder"], n, 1e-4, latent_dim=64, n_clusters=10,
                                               key=jax.random.PRNGKey(3))
    plain = train.plan_train_memory(*_problem(n)).temp_bytes
    assert train.plan_train_memory(objective, params, x).temp_bytes <= plain + 2.0 * 4 * n * n


def test_cluster_stage_holds_at_most_one_square_temporary():
    """XLA's plan for the thresholded C and the iterative (large n) cluster stage, beside C itself: the
    threshold levels are found without an n x n temporary, and the stage holds one, the symmetric part of the
    thresholded C that its randomized subspace iteration multiplies (two before 2026-12-06)."""
    from jaxsc import cluster
    from jaxsc._src.cluster.pipeline import _cluster

    n = 2048
    coef, square = jax.ShapeDtypeStruct((n, n), jnp.float32), 4 * n * n
    threshold = jax.jit(lambda c: cluster.threshold_coefficients(c, 0.2)).lower(coef).compile()
    assert threshold.memory_analysis().temp_size_in_bytes <= 0.1 * square
    post = cluster.PostConfig(threshold=0.2, subspace_dim=5, power=4.0, add_identity=True, solver="iterative")
    stage = _cluster.lower(coef, 10, post, jax.ShapeDtypeStruct((2,), jnp.uint32)).compile()
    assert stage.memory_analysis().temp_size_in_bytes <= 1.25 * square


@pytest.mark.parametrize("early_stop", [None, train.EarlyStop()])
def test_step_writes_the_parameters_in_place(early_stop):
    """The step's new parameters depend on every other use of the old ones (``loop._after``), so XLA overwrites
    the donated C instead of copying it at the start of every step (an n x n copy before 2026-12-06); under the
    early stop the stopped step selects elementwise (its ``lax.cond`` copied C and both Adam moments twice)."""
    objective, params, x = _problem(256)
    state = loop._initial_state(objective, params, x, None)
    compiled = loop.train_step.lower(state, x, jax.random.PRNGKey(0), objective, None, early_stop).compile()
    entry = compiled.as_text()[compiled.as_text().index("ENTRY"):]
    assert not [line for line in entry.splitlines() if " copy(" in line and "[256,256]" in line]
    assert "256,256" in entry  # C is in the step
    plain = loop.train_step.lower(state, x, jax.random.PRNGKey(0), objective).compile()
    temp = lambda c: c.memory_analysis().temp_size_in_bytes  # noqa: E731
    assert temp(compiled) <= temp(plain) + 0.01 * 4 * 256 * 256  # a few scalars more
