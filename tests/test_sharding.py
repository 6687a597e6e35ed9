"""C split by rows over 8 host devices gives the same training and labels as one device."""
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import json, jax, numpy as np
    from jax.sharding import Mesh
    import jaxsc
    assert jax.device_count() == 8, jax.devices()
    ds = jaxsc.data.load("digits")
    keep = np.concatenate([np.flatnonzero(ds.y == c)[:16] for c in (0, 1, 4)])[:40]
    x, y = ds.x[keep], ds.y[keep]
    preset = jaxsc.presets.get_preset(None, x.shape[1:], "rgrl").replace(pretrain_steps=50, finetune_steps=15,
                                                                         early_stop=False)
    ae = jaxsc.pretrain(x, preset, seed=0, verbose=False)
    mesh = Mesh(np.array(jax.devices()), ("rows",))
    single = jaxsc.fit(x, preset, ae, n_clusters=3, verbose=False)
    split = jaxsc.fit(x, preset, ae, n_clusters=3, mesh=mesh, verbose=False)
    assert len(split.coef.sharding.device_set) == 8, split.coef.sharding
    assert split.coef.sharding.shard_shape(split.coef.shape) == (5, 40)
    labels = [np.asarray(jaxsc.cluster_coef(f.coef, 3, preset.post).labels).tolist() for f in (single, split)]
    from jaxsc._src.api import _finetune_problem, build_objective
    for start in ("constant", "ridge"):  # C is created split: no device ever holds all of it
        coef = _finetune_problem(x, preset.replace(coef_start=start), ae, 3, 0, mesh=mesh)[1]["coef"]
        assert coef.sharding.shard_shape(coef.shape) == (5, 40), (start, coef.sharding)
    ridge = [jaxsc.fit(x, preset.replace(coef_start="ridge"), ae, n_clusters=3, steps=0, mesh=m, verbose=False).coef
             for m in (None, mesh)]
    objective = build_objective(preset, jaxsc.build_autoencoder(preset, x.shape[1:]))
    plans = [jaxsc.train.plan_train_memory(objective, single.params, x * preset.data_scale, mesh=m)
             for m in (None, mesh)]
    print(json.dumps({"loss": [single.history[-1][1], split.history[-1][1]],
                      "coef_diff": float(np.abs(np.asarray(single.coef) - np.asarray(split.coef)).max()),
                      "coef_scale": float(np.abs(np.asarray(single.coef)).max()), "labels": labels,
                      "ridge_diff": float(np.abs(np.asarray(ridge[0]) - np.asarray(ridge[1])).max()),
                      "ridge_scale": float(np.abs(np.asarray(ridge[0])).max()),
                      "plan_arguments": [p.argument_bytes for p in plans]}))
''')


def _run_on_eight_host_devices(script: str, timeout: int) -> str:
    """``script``'s stdout, run in a fresh process with 8 host CPU devices; its failure fails the test."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_eight_host_devices_match_one():
    stdout = _run_on_eight_host_devices(SCRIPT, timeout=600)
    import json
    result = json.loads(stdout.strip().splitlines()[-1])
    single, split = result["loss"]
    assert abs(single - split) <= 1e-4 * abs(single)
    assert result["coef_diff"] <= 1e-3 * result["coef_scale"]
    assert result["labels"][0] == result["labels"][1]
    # the same start up to float32 rounding, which the ridge solve at this preset's reg = 1e-4 amplifies
    assert result["ridge_diff"] <= 1e-3 * result["ridge_scale"]
    one, per_device = result["plan_arguments"]
    assert 0 < per_device < one  # XLA's per-device plan holds a row block of C and its Adam moments


BFLOAT16_PRODUCTS = textwrap.dedent('''
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from jaxsc.models import self_express
    mesh = Mesh(np.array(jax.devices()), ("rows",))
    rng = np.random.default_rng(0)
    c = jnp.asarray(rng.standard_normal((40, 40)), jnp.float32)
    z = jnp.asarray(rng.standard_normal((40, 6)), jnp.float32)
    grad = jax.jit(jax.grad(lambda c, z: jnp.sum(jnp.sin(self_express(c, z, matmul_dtype=jnp.bfloat16))), (0, 1)))
    one = grad(c, z)
    split = grad(jax.device_put(c, NamedSharding(mesh, P("rows", None))), z)
    assert len(split[0].sharding.device_set) == 8, split[0].sharding
    for a, b in zip(one, split):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
''')


def test_bfloat16_products_split_over_eight_devices_match_one():
    """The bfloat16 C Z and its custom gradient products (row-major transposes on the CPU) with C split by rows."""
    _run_on_eight_host_devices(BFLOAT16_PRODUCTS, timeout=300)


SHARDINGS = textwrap.dedent('''
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, PartitionSpec as P
    from jaxsc.train import sample_matrix_shardings, shard_sample_matrices
    mesh = Mesh(np.array(jax.devices()), ("rows",))
    tree = {"coef": jnp.ones((16, 16)), "mu": {"coef": jnp.zeros((16, 16))}, "kernel": jnp.ones((3, 3)),
            "rows": jnp.ones((16, 4)), "count": jnp.zeros((), jnp.int32)}
    specs = jax.tree.map(lambda s: s.spec, sample_matrix_shardings(tree, 16, mesh))
    assert specs == {"coef": P("rows", None), "mu": {"coef": P("rows", None)}, "kernel": P(), "rows": P(),
                     "count": P()}, specs
    placed = shard_sample_matrices(tree, 16, mesh)
    assert placed["coef"].sharding.shard_shape((16, 16)) == (2, 16)
    assert placed["kernel"].sharding.is_fully_replicated
    np.testing.assert_array_equal(np.asarray(placed["coef"]), np.ones((16, 16)))
    try:
        sample_matrix_shardings({"coef": jnp.ones((12, 12))}, 12, mesh)
    except ValueError as err:
        assert "n = 12 samples cannot be split evenly over 8 devices" in str(err), err
    else:
        raise AssertionError("n = 12 over 8 devices was accepted")
''')


def test_sample_matrices_split_by_rows_and_the_rest_replicated():
    """Which leaves :func:`jaxsc.train.shard_sample_matrices` splits: the (n, n) ones (C, its moments)."""
    _run_on_eight_host_devices(SHARDINGS, timeout=300)
