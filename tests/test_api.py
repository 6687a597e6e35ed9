import json
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.base

import jaxsc
from jaxsc._src import cli
from jaxsc._src.api import build_objective
from jaxsc._src.checks import check_samples
from jaxsc import data, metrics
from conftest import digits_subset, needs_data


def test_estimator_end_to_end():
    x, y = digits_subset()
    model = jaxsc.DSC(n_clusters=3, seed=0, pretrain_steps=300, finetune_steps=30)
    labels = model.fit_predict(x)
    assert labels.shape == (120,) and model.coef_.shape == (120, 120) and model.affinity_.shape == (120, 120)
    np.testing.assert_allclose(model.affinity_, model.affinity_.T, atol=1e-6)
    assert metrics.accuracy(y, labels) > 0.8
    assert set(model.seconds_) == {"pretrain", "finetune", "cluster"}
    again = jaxsc.DSC(n_clusters=3, seed=0, pretrain_steps=300, finetune_steps=30).fit_predict(x)
    np.testing.assert_array_equal(labels, again)


def test_estimators_follow_the_scikit_learn_protocol():
    model = jaxsc.RGRL(n_clusters=3, seed=1, finetune_steps=5)
    assert model.get_params() == {"n_clusters": 3, "preset": None, "method": None, "seed": 1,
                                  "autoencoder_params": None, "verbose": False,
                                  "finetune_steps": 5}
    assert repr(model) == "RGRL(finetune_steps=5, n_clusters=3, seed=1)"
    twin = sklearn.base.clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    model.set_params(seed=4, pretrain_steps=7)  # a constructor argument and a preset field
    assert model.seed == 4 and model.overrides == {"finetune_steps": 5, "pretrain_steps": 7}
    assert twin.overrides == {"finetune_steps": 5}
    for estimator in (jaxsc.SAI(n_clusters=3, max_epochs=2), jaxsc.LRSC(n_clusters=3, meta=False)):
        assert sklearn.base.is_clusterer(estimator)
        assert sklearn.base.clone(estimator).get_params() == estimator.get_params()
    x, _ = digits_subset(per_class=5)
    with pytest.raises(ValueError, match="unknown Preset fields"):
        jaxsc.DSC(n_clusters=3).set_params(epochs=3).fit(x)


def test_functional_core_matches_estimator_pieces():
    x, _ = digits_subset(per_class=10)
    preset = jaxsc.presets.derive_preset(x.shape[1:]).replace(pretrain_steps=5, finetune_steps=3)
    ae = jaxsc.pretrain(x, preset, verbose=False)
    fitted = jaxsc.fit(x, preset, ae, verbose=False)
    assert fitted.coef.shape == (30, 30) and fitted.steps == 3
    clustered = jaxsc.cluster_coef(fitted.coef, 3, preset.post)
    assert clustered.labels.shape == (30,)
    # run() clusters a given fine-tune instead of training (seeds sharing one deterministic fit)
    shared = jaxsc.run(x, 3, preset, seed=1, fitted=fitted, verbose=False)
    np.testing.assert_array_equal(shared.coef, np.asarray(fitted.coef))
    assert shared.fitted is fitted and shared.history is fitted.history
    with pytest.raises(ValueError, match=r"fitted C has shape \(30, 30\), expected \(20, 20\)"):
        jaxsc.run(x[:20], 3, preset, fitted=fitted, verbose=False)


def test_fit_calls_stop_check_every_log_every_steps_and_stops_when_it_says_so():
    x, _ = digits_subset(per_class=10)
    preset = jaxsc.presets.derive_preset(x.shape[1:]).replace(pretrain_steps=5, finetune_steps=10)
    ae = jaxsc.pretrain(x, preset, verbose=False)
    seen = []

    def check(params):  # the fitted parameters at each read: C moves from its constant start
        seen.append(np.asarray(params["coef"]))
        return len(seen) == 3

    fitted = jaxsc.fit(x, preset, ae, log_every=2, stop_check=check, verbose=False)
    assert fitted.steps == 6 and [step for step, _ in fitted.history] == [2, 4, 6]
    assert len(seen) == 3 and seen[0].shape == (30, 30) and not np.allclose(seen[0], seen[2])


def test_fit_from_the_ridge_start():
    """``coef_start="ridge"``: C starts at :func:`jaxsc.train.ridge_start` for the pretrained network (0 steps
    return it); an unknown start is named."""
    x, _ = digits_subset(per_class=10)
    # diag(C) = 0: 160 latent columns for 30 samples, where a diag-free start would be close to C = I
    preset = jaxsc.presets.derive_preset(x.shape[1:]).replace(pretrain_steps=5, coef_start="ridge", zero_diagonal=True)
    ae = jaxsc.pretrain(x, preset, verbose=False)
    start = jaxsc.fit(x, preset, ae, steps=0, verbose=False).coef
    objective = build_objective(preset, jaxsc.build_autoencoder(preset, x.shape[1:]))
    np.testing.assert_allclose(start, jaxsc.train.ridge_start(objective, ae, jnp.asarray(x)), rtol=1e-5, atol=1e-7)
    assert float(jnp.max(jnp.abs(start))) > 1e3 * preset.coef_init
    with pytest.raises(ValueError, match=r"unknown coef_start 'zero'; choose one of \('constant', 'ridge'\)"):
        jaxsc.fit(x, preset.replace(coef_start="zero"), ae, steps=0, verbose=False)


def test_coef_lr_sets_the_rate_of_c_alone():
    """Adam's first step moves every parameter by its learning rate (times the sign of its gradient): C by
    ``coef_lr``, the network by ``finetune_lr``; without ``coef_lr`` both by ``finetune_lr``."""
    preset = jaxsc.presets.derive_preset((8, 8, 1)).replace(finetune_lr=1e-3)
    model = jaxsc.build_autoencoder(preset, (8, 8, 1))
    params = {"ae": {"w": jnp.ones((3, 2))}, "coef": jnp.ones((4, 4))}
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    for coef_lr, expected in ((None, 1e-3), (2e-4, 2e-4)):
        optimizer = build_objective(preset.replace(coef_lr=coef_lr), model).optimizer()
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        np.testing.assert_allclose(updates["coef"], -expected, rtol=1e-4)
        np.testing.assert_allclose(updates["ae"]["w"], -1e-3, rtol=1e-4)
    with pytest.raises(ValueError, match=r"C's learning rate must be positive, got coef_lr = 0.0"):
        build_objective(preset.replace(coef_lr=0.0), model)


def test_bad_input_messages():
    x, _ = digits_subset(per_class=5)
    with pytest.raises(ValueError, match="n_clusters must lie in 2..n = 15, got 16"):
        jaxsc.DSC(n_clusters=16, pretrain_steps=1, finetune_steps=1).fit(x)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN or inf values"):
        jaxsc.DSC(n_clusters=3).fit(bad)
    with pytest.raises(ValueError, match=r"expected images shaped \(n, H, W\) or \(n, H, W, C\), or vectors"):
        jaxsc.DSC(n_clusters=3).fit(np.zeros((5, 4, 4, 1, 1)))
    with pytest.raises(ValueError, match="unknown preset 'coil21'"):
        jaxsc.DSC(n_clusters=3, preset="coil21").fit(x)
    with pytest.raises(ValueError, match="unknown Preset fields"):
        jaxsc.DSC(n_clusters=3, epochs=3).fit(x)
    with pytest.raises(ValueError, match=r"Preset.w_se must be of type float like its value .*, got '1e3x'"):
        jaxsc.presets.get_preset("coil20", (32, 32, 1)).replace(w_se="1e3x")
    with pytest.raises(ValueError, match=r"SAIPreset.sharpen_prediction must be of type bool like its value True, got "
                                         r"'False' \(on the command line: true or false\)"):
        jaxsc.presets.SAIPreset().replace(sharpen_prediction="False")
    with pytest.raises(ValueError, match=r"Preset.finetune_steps must be of type int like its value .*got True"):
        jaxsc.presets.get_preset("coil20", (32, 32, 1)).replace(finetune_steps=True)
    assert jaxsc.presets.get_preset("coil20", (32, 32, 1)).replace(w_se=1000).w_se == 1000  # an int for a float


def test_autoencoder_params_that_do_not_fit_are_named():
    x, _ = digits_subset(per_class=5)
    preset = jaxsc.presets.derive_preset(x.shape[1:])
    params = jaxsc.pretrain(x, preset, steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"autoencoder_params are flax variables \{'params': \.\.\.\}; pass their "
                                         r"\['params'\]"):
        jaxsc.fit(x, preset, {"params": params}, steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"do not fit the autoencoder ConvAutoencoder for samples of shape "
                                         r"\(8, 8, 1\): .*has shape \(3, 3, 1, 10\), expected \(3, 3, 1, 4\)"):
        jaxsc.fit(x, preset.replace(channels=(4,)), params, steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"missing \[.*\]; unexpected \[.*\]"):
        jaxsc.DSC(n_clusters=3, autoencoder_params={"layer": np.zeros(3)}, finetune_steps=1).fit(x)
    sai_params = jaxsc.pretrain_dae(x, jaxsc.presets.SAIPreset(pretrain_epochs=1, batch_size=8), verbose=False)
    with pytest.raises(ValueError, match="autoencoder_params are flax variables"):
        jaxsc.fit_sai(x, 3, "hoe", jaxsc.presets.SAIPreset(max_epochs=1, batch_size=8),
                      autoencoder_params={"params": sai_params}, verbose=False)


def test_images_outside_unit_range_warn():
    x, _ = digits_subset(per_class=5)
    with pytest.warns(UserWarning, match=r"images range over \[0, 255\].*divide 8-bit pixels by 255"):
        checked = check_samples(np.round(x * 255).astype(np.uint8))
    assert checked.dtype == np.float32 and checked.max() == 255
    with pytest.warns(UserWarning, match=r"images range over \[-1, 1\], but the presets are set for pixels in"):
        check_samples(2 * x - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_samples(x)  # [0, 1] images, as the loaders return them
        check_samples(np.full((4, 3), 7.0))  # vectors have no range


def test_cli_run_and_datasets(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = cli.main(["run", "--dataset", "digits", "--seeds", "0", "1", "--set", "pretrain_steps=20",
                     "finetune_steps=3", "--quiet", "--out", str(out)])  # one --set, two fields (or --set each)
    assert code == 0
    result = json.loads(out.read_text())
    assert (result["preset"]["pretrain_steps"], result["preset"]["finetune_steps"]) == (20, 3)
    assert [r["seed"] for r in result["seeds"]] == [0, 1]
    assert set(result["summary"]["acc"]) == {"mean", "std", "max"}
    assert 0 < result["kmeans_raw"]["summary"]["acc"]["mean"] <= 1
    assert "cores" in result["machine"]["cpu"] and result["machine"]["jax"] == jax.__version__
    printed = capsys.readouterr().out
    assert "dsc-l2 digits seed 1" in printed and "k-means on raw data" in printed
    summaries = [line for line in printed.splitlines() if "mean+-std" in line]
    assert [line.split(" mean+-std")[0].strip() for line in summaries] == ["dsc-l2", "raw k-means"]
    assert f"| max: ACC {result['summary']['acc']['max']:.4f}" in summaries[0]
    assert cli.main(["datasets", "--data-dir", str(tmp_path)]) == 0
    assert "digits" in capsys.readouterr().out


def test_compile_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(cli.COMPILE_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.compile_cache_dir() == tmp_path / "jaxsc" / "xla"
    assert cli.compile_cache_dir("off") is None
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax"))  # as $JAX_COMPILATION_CACHE_DIR sets it
    try:
        assert cli.compile_cache_dir() == tmp_path / "jax"
        monkeypatch.setenv(cli.COMPILE_CACHE_ENV, str(tmp_path / "env"))
        assert cli.compile_cache_dir() == tmp_path / "env"
        assert cli.compile_cache_dir(str(tmp_path / "arg")) == tmp_path / "arg"
        monkeypatch.setenv(cli.COMPILE_CACHE_ENV, "off")
        assert cli.compile_cache_dir() is None
        assert cli.compile_cache_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    finally:
        jax.config.update("jax_compilation_cache_dir", None)


def test_an_unusable_compile_cache_is_reported_and_skipped(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    cli._use_compile_cache(tmp_path / "a-file" / "xla")
    assert "jaxsc: no compilation cache" in capsys.readouterr().err
    assert jax.config.jax_compilation_cache_dir is None


def test_cli_run_keeps_its_compilations_and_reuses_them(tmp_path):
    """In fresh processes (jax decides at a process's first compilation whether it caches): nothing written
    with ``--compile-cache off``; by default every compilation lands in the user cache dir (also the fast ones:
    the train step's on any machine), and a run that loads them gives the same results."""
    env = {k: v for k, v in os.environ.items()
           if k not in (cli.COMPILE_CACHE_ENV, cli.MIN_COMPILE_TIME_ENV, "JAX_COMPILATION_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    cache = tmp_path / "jaxsc" / "xla"

    def run(name, *extra):
        out = tmp_path / f"{name}.json"
        done = subprocess.run([sys.executable, "-m", "jaxsc._src.cli", "run", "--dataset", "digits", "--set",
                               "pretrain_steps=5", "--set", "finetune_steps=2", "--quiet", "--out", str(out), *extra],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(out.read_text())["seeds"][0]

    run("off", "--compile-cache", "off")
    assert not cache.exists()
    first = run("first")
    written = sorted(path.name for path in cache.iterdir())
    assert any(name.startswith("jit_train_step") for name in written), written
    again = run("again")
    assert sorted(path.name for path in cache.iterdir()) == written  # loaded, nothing compiled anew
    assert {k: again[k] for k in cli.REPORTED} == {k: first[k] for k in cli.REPORTED}


def test_cli_errors(tmp_path, capsys):
    assert cli.main(["run", "--method", "dsc-l3"]) == 2
    assert "unknown method 'dsc-l3'" in capsys.readouterr().err
    assert cli.main(["run", "--dataset", "coil20", "--data-dir", str(tmp_path)]) == 2
    assert "missing data file 'COIL20.mat'" in capsys.readouterr().err
    assert cli.main(["run", "--dataset", "digits", "--init", "reference"]) == 2
    assert "no reference weights for 'digits'" in capsys.readouterr().err
    assert cli.main(["run", "--dataset", "coil20", "--method", "sai-hoe", "--init", "reference"]) == 2
    assert "sai-hoe trains its own networks" in capsys.readouterr().err


@needs_data("orl/ORL_32x32.mat", "pretrained_dscnet/orl.pkl")
@pytest.mark.realdata
def test_cli_reference_weights_that_do_not_fit_the_preset(capsys):
    """RGRL's ORL preset has another encoder and [0, 1] pixels: the error names both and the --set that fits."""
    assert cli.main(["run", "--dataset", "orl", "--method", "rgrl", "--init", "reference"]) == 2
    err = capsys.readouterr().err
    assert "DSC-Net's pretrained orl network (3x3@3, 3x3@3, 3x3@5, pixels x 255) does not fit the rgrl preset " \
           "for orl (5x5@5, 3x3@3, 3x3@3, pixels x 1)" in err
    assert "--set 'kernels=[3,3,3]' 'channels=[3,3,5]' data_scale=255" in err


@needs_data("orl/ORL_32x32.mat", "pretrained_dscnet/orl.pkl")
@pytest.mark.realdata
def test_orl_from_reference_weights_short_run():
    """ORL from DSC-Net's pretrained autoencoder, 150 of the preset's 700 fine-tune steps: already well
    above k-means on the raw pixels (ACC 0.548, benchmarks/results/dsc.md). The short run lands at 0.70 on the
    machines tried; the bound leaves room for the float rounding of other CPUs, which moves a few labels."""
    ds = data.load("orl")
    ae = jaxsc.models.load_reference_weights("orl")["params"]
    model = jaxsc.DSC(n_clusters=40, preset="orl", autoencoder_params=ae, finetune_steps=150).fit(ds.x)
    acc = metrics.accuracy(ds.y, model.labels_)
    assert acc > 0.65, acc


def test_run_compiles_the_fine_tune_step_and_cluster_stage_ahead_and_runs_them(monkeypatch):
    from jaxsc._src import api

    x, _ = digits_subset(per_class=10)
    preset = jaxsc.presets.derive_preset(x.shape[1:]).replace(pretrain_steps=5, finetune_steps=3)
    events = []

    def recording(name, compile_ahead):
        def compile_(*args, **kwargs):
            events.append(f"compile {name}")
            ahead = compile_ahead(*args, **kwargs)
            executable = ahead._executable.result()
            monkeypatch.setattr(ahead._executable, "result",
                                lambda: lambda **kw: events.append(f"run {name}") or executable(**kw))
            return ahead
        return compile_

    for name, function in (("step", "compile_finetune_step"), ("stage", "compile_cluster_stage")):
        monkeypatch.setattr(api, function, recording(name, getattr(api, function)))
    for name in ("pretrain", "fit"):
        real = getattr(api, name)
        monkeypatch.setattr(api, name, lambda *a, real=real, name=name, **k: events.append(name) or real(*a, **k))
    result = jaxsc.run(x, 3, preset, verbose=False)
    assert events == ["compile step", "pretrain", "compile stage", "fit"] + ["run step"] * 3 + ["run stage"]
    # the same as the jitted functions
    ae = jaxsc.pretrain(x, preset, verbose=False)
    fitted = jaxsc.fit(x, preset, ae, verbose=False)
    np.testing.assert_array_equal(result.coef, np.asarray(fitted.coef))
    np.testing.assert_array_equal(result.labels, np.asarray(jaxsc.cluster_coef(fitted.coef, 3, preset.post).labels))


def test_run_and_sai_under_enable_x64():
    """With jax_enable_x64 (e.g. set by another library) the networks stay float32, the fine-tune step's types
    stay those it was compiled ahead for (its loss became float64 after one step, which the ahead-of-time
    executable refused), and labels are int32, as without it."""
    x, _ = digits_subset(per_class=10)
    preset = jaxsc.presets.derive_preset(x.shape[1:]).replace(pretrain_steps=5, finetune_steps=3)
    single = jaxsc.run(x, 3, preset, verbose=False)
    with jax.enable_x64(True):
        double = jaxsc.run(x.astype(np.float64), 3, preset, verbose=False)
        sai = jaxsc.SAI(n_clusters=3, seed=0, pretrain_epochs=2, max_epochs=2).fit(x.reshape(len(x), -1))
    assert {leaf.dtype for leaf in jax.tree.leaves(double.params)} == {np.dtype(np.float32)}
    assert double.labels.dtype == np.int32 and sai.labels_.dtype == np.int32
    np.testing.assert_allclose(double.coef, single.coef, rtol=1e-4, atol=1e-6)
