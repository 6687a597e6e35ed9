"""benchmarks/_tables.py: seeds of one row run in separate invocations end up in one result file."""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import benchmark_module

import jaxsc


def _result(seeds, acc, preset="a"):
    rows = [{"seed": s, "acc": a, "nmi": a / 2} for s, a in zip(seeds, acc)]
    baseline = [{"seed": s, "acc": 0.1 * s, "nmi": 0.0} for s in seeds]
    summary = {m: {"mean": 0.0, "std": 0.0, "max": 0.0} for m in ("acc", "nmi")}
    return {"method": "dsc-l2", "dataset": "orl", "n": 400, "preset": {"p": preset, "kernels": (3, 3)}, "seeds": rows,
            "summary": summary, "kmeans_raw": {"seeds": baseline, "summary": dict(summary)}}


def test_save_result_merges_seeds_of_the_same_preset(tmp_path):
    tables = benchmark_module("_tables")
    path = tmp_path / "dsc" / "orl-pretrain.json"
    tables.save_result(_result([0], [0.8]), path)
    tables.save_result(_result([2, 1], [0.6, 0.7]), path)
    tables.save_result(_result([1], [0.9]), path)  # a seed run again replaces its old entry
    saved = json.loads(path.read_text())
    assert [r["seed"] for r in saved["seeds"]] == [0, 1, 2]
    acc = np.array([0.8, 0.9, 0.6])
    np.testing.assert_allclose(saved["summary"]["acc"]["mean"], acc.mean())
    np.testing.assert_allclose(saved["summary"]["acc"]["std"], acc.std())
    np.testing.assert_allclose(saved["summary"]["nmi"]["max"], 0.45)
    np.testing.assert_allclose(saved["kmeans_raw"]["summary"]["acc"]["mean"], 0.1)
    assert "date" in saved


def test_save_result_replaces_a_file_from_another_preset(tmp_path):
    tables = benchmark_module("_tables")
    path = tmp_path / "orl.json"
    tables.save_result(_result([0, 1], [0.8, 0.7]), path)
    tables.save_result(_result([2], [0.5], preset="b"), path)
    saved = json.loads(path.read_text())
    assert [r["seed"] for r in saved["seeds"]] == [2] and saved["preset"]["p"] == "b"


def test_save_result_replaces_a_file_from_another_init(tmp_path, capsys):
    """Seeds fine-tuned from DSC-Net's pretrained network never merge with seeds from jaxsc's own pretraining."""
    tables = benchmark_module("_tables")
    path = tmp_path / "orl.json"
    tables.save_result({**_result([0, 1], [0.8, 0.7]), "init": "pretrain"}, path)
    tables.save_result({**_result([2], [0.5]), "init": "reference"}, path)
    saved = json.loads(path.read_text())
    assert [r["seed"] for r in saved["seeds"]] == [2] and saved["init"] == "reference"
    assert "ran with another setting (method, dataset, init or n)" in capsys.readouterr().err


@pytest.mark.parametrize("field, former, other", [("distill_form", "sum", "normalized"),
                                                   ("matmul_dtype", None, "bfloat16")])
def test_a_preset_field_added_later_merges_only_at_its_former_value(tmp_path, capsys, field, former, other):
    tables = benchmark_module("_tables")
    path = tmp_path / "orl.json"
    tables.save_result(_result([0], [0.8]), path)  # saved before presets had the field
    same = _result([1], [0.6])
    same["preset"][field] = former  # the value the code had before the field
    tables.save_result(same, path)
    assert [r["seed"] for r in json.loads(path.read_text())["seeds"]] == [0, 1]
    assert capsys.readouterr().err == ""
    changed = _result([2], [0.5])
    changed["preset"][field] = other
    tables.save_result(changed, path)
    assert [r["seed"] for r in json.loads(path.read_text())["seeds"]] == [2]
    assert f"replacing {path}: its seeds [0, 1] ran with another setting ({field})" in capsys.readouterr().err


def test_a_switched_off_module_form_does_not_split_a_row(tmp_path):
    """A row without InfoNCE (nce off) merges whatever its preset's nce_reduction; with nce on it must match."""
    tables = benchmark_module("_tables")
    path = tmp_path / "lrsc.json"
    first = _result([0], [0.8])
    first["preset"].update(nce=False, nce_reduction="mean")
    tables.save_result(first, path)
    second = _result([1], [0.6])
    second["preset"].update(nce=False, nce_reduction="sum")
    tables.save_result(second, path)
    assert [r["seed"] for r in json.loads(path.read_text())["seeds"]] == [0, 1]
    on = _result([2], [0.5])
    on["preset"].update(nce=True, nce_reduction="sum")
    tables.save_result(on, path)
    assert [r["seed"] for r in json.loads(path.read_text())["seeds"]] == [2]


@pytest.fixture
def methods():
    return benchmark_module("methods")


def test_methods_extra_row_needs_both_set_and_tag(methods, monkeypatch, capsys):
    """An extra row (--set) must be named (--tag), so that it never overwrites the preset's own result file."""
    for argv in (["--set", "w_se=1"], ["--tag", "x"]):
        monkeypatch.setattr(sys, "argv", ["methods.py", "--table-only", *argv])
        with pytest.raises(SystemExit):
            methods.main()
        assert "--set and --tag go together" in capsys.readouterr().err


def test_methods_encoder_cell_names_each_layer(methods):
    assert methods.encoder_cell({"kernels": [5, 3, 3], "channels": [5, 3, 3]}) == "5x5@5, 3x3@3, 3x3@3"


def test_methods_method_cell_names_what_ran_narrow(methods):
    """Rows that ran C's Adam moments or C Z's products in bfloat16 say so; rows saved before those preset fields
    existed, and float32 rows, show the method alone."""
    row = {"method": "dsc-l2", "preset": {"kernels": [3]}}
    assert methods.method_cell(row) == "dsc-l2"
    assert methods.method_cell({**row, "preset": {"coef_state_dtype": None, "matmul_dtype": None}}) == "dsc-l2"
    assert methods.method_cell({**row, "preset": {"matmul_dtype": "bfloat16"}}) == "dsc-l2 (C Z products in bfloat16)"
    both = {**row, "preset": {"coef_state_dtype": "bfloat16", "matmul_dtype": "bfloat16"}}
    assert methods.method_cell(both) == "dsc-l2 (C's Adam moments in bfloat16, C Z products in bfloat16)"


def test_methods_method_cell_names_c_s_own_learning_rate(methods):
    row = {"method": "dsc-l2", "preset": {"kernels": [3], "coef_lr": None}}
    assert methods.method_cell(row) == "dsc-l2"
    assert methods.method_cell({**row, "preset": {"coef_lr": 2e-4}}) == "dsc-l2 (C's learning rate 0.0002)"
    large = {"method": "dsc-l2", "dataset": "mnist-test", "subsample": 5000, "n_clusters": 10}
    assert methods.method_cell({**large, "preset": {"finetune_lr": 1e-3}}) == "dsc-l2"
    assert methods.method_cell({**large, "preset": {"finetune_lr": 2e-4}}) == "dsc-l2 (learning rate 0.0002)"


def test_methods_method_cell_names_a_changed_pseudo_graph(methods):
    """A PSSC row whose pseudo-graph form or weight differs from its dataset's preset says so; the preset's own
    rows and the ablation without pseudo-supervision show the method alone."""
    preset = {"graph_form": "contrastive", "w_graph": 1.0}
    assert methods.method_cell({"method": "pssc", "dataset": "coil20", "preset": preset}) == "pssc"
    assert methods.method_cell({"method": "pssc-l", "dataset": "coil20",
                                "preset": {"graph_form": "contrastive", "w_graph": 0.0}}) == "pssc-l"
    changed = {"method": "pssc", "dataset": "coil20", "preset": {"graph_form": "hinge", "w_graph": 1000}}
    assert methods.method_cell(changed) == "pssc (hinge pseudo-graph at weight 1000)"


def test_methods_method_cell_names_a_changed_locality_weight(methods):
    """UDLL's ablation without the locality term says so; the preset's row and the methods without one do not."""
    udll = jaxsc.presets.get_preset("coil20", (), "udll")
    assert methods.method_cell({"method": "udll", "dataset": "coil20", "preset": {"w_local": udll.w_local}}) == "udll"
    assert methods.method_cell({"method": "udll", "dataset": "coil20", "preset": {"w_local": 0.0}}) == \
        "udll (locality weight 0)"
    assert methods.method_cell({"method": "dsc-l2", "dataset": "coil20", "preset": {"w_local": 0.0}}) == "dsc-l2"


def test_network_dependence_compares_every_network_and_objective(monkeypatch, tmp_path):
    """benchmarks/network_dependence.py on 3 digit classes with two untrained networks and 3 fine-tune steps: a row
    per (network, objective) and the raw-space term alone, the anchors at ARI 1 to themselves, diag(C) = 0 only in
    the preset's rows, and the raw-space term's C the same from either network (it never reads the network)."""
    dependence = benchmark_module("network_dependence")
    digits = jaxsc.data.load("digits")
    keep = digits.y < 3
    x, y = digits.x[keep], digits.y[keep]
    preset = jaxsc.presets.get_preset("coil20", x.shape[1:], "rgrl").replace(finetune_steps=3)
    model = jaxsc.build_autoencoder(preset, x.shape[1:])
    nets = {f"untrained ({seed})": model.init(jax.random.PRNGKey(seed), x[:2])["params"] for seed in (0, 1)}
    rows = dependence.compare(x, y, preset, nets)
    assert [(r["network"], r["objective"]) for r in rows] == [
        (net, name) for net in nets for name in dependence.objectives(preset)] + [dependence.RAW_ONLY]
    ari = {(r["network"], r["objective"]): r["ari"] for r in rows}
    assert ari[("untrained (0)", dependence.ANCHOR)][0] == 1.0 and ari[dependence.RAW_ONLY][1] == 1.0
    assert all(-1 <= a <= 1 for r in rows for a in r["ari"])
    assert all((r["diag"] == 0) == r["objective"].endswith("(preset)") for r in rows)
    raw_only = dependence.raw_space_only(preset)
    coefs = [np.asarray(jaxsc.fit(x, raw_only, params, n_clusters=3, verbose=False).coef) for params in nets.values()]
    np.testing.assert_array_equal(coefs[0], coefs[1])
    monkeypatch.setattr(dependence, "RESULTS", tmp_path)
    text = dependence.write_table(rows)
    assert (tmp_path / "network_dependence_coil20.md").read_text() == text
    assert text.count("\n| untrained (1) |") == 4 and "\n| none | raw-space term and C penalty only |" in text


def test_large_n_rates_traces_how_far_the_code_moves(monkeypatch, tmp_path):
    """benchmarks/large_n_rates.py at n = 40, 4 fine-tune steps read every 2: Z's distance from Z_0 near 0 for a
    network rate of 1e-12 (only C moves) and not at 1e-3, near 0 at the first read with the network still for
    steps 1-2, then not, and unchanged after step 2 in the restarts; mean share and block share against numpy; the
    table has a row and a trace each."""
    rates = benchmark_module("large_n_rates")
    x, y, base = rates.large_problem(40, 4, 2)
    model = jaxsc.build_autoencoder(base, x.shape[1:])
    autoencoder = jaxsc.pretrain(x, base, seed=0, verbose=False)
    z0 = rates.latent(model, base, autoencoder, x)
    z = np.asarray(z0, np.float64)
    assert rates.mean_share(z0) == pytest.approx(40 * np.sum(z.mean(axis=0) ** 2) / np.sum(z ** 2), rel=1e-5)
    coef = np.random.default_rng(0).normal(size=(40, 40))
    part = np.abs(coef - coef.mean(axis=1, keepdims=True))
    expected = part[y[:, None] == y[None, :]].sum() / part.sum()
    share = rates.block_share(jnp.asarray(coef, jnp.float32), jax.nn.one_hot(y, rates.LARGE_CLUSTERS))
    assert float(share) == pytest.approx(expected, rel=1e-5)
    still = "still for steps 1-2"
    rows = [rates.rate_case(x, y, base.replace(coef_lr=1e-3, finetune_lr=net_lr), model, autoencoder, z0, 2)
            for net_lr in (1e-12, 1e-3)]
    rows.append(rates.rate_case(x, y, base.replace(coef_lr=1e-3, finetune_lr=1e-3), model, autoencoder, z0, 2,
                                still, rates.network_schedules(2)[still]))
    rows += rates.restart_cases(x, y, base.replace(coef_lr=1e-3, finetune_lr=1e-3), model, autoencoder, z0, 2, 2)
    assert [len(r["trace"][name]) for r in rows for name in rates.TRACED] == [2] * 20
    moved = [r["trace"]["Z moved"] for r in rows]
    assert max(moved[0]) < 1e-5 < min(moved[1]) and moved[2][0] < 1e-5 < moved[2][1]
    assert 1e-5 < moved[3][0] == pytest.approx(moved[3][1], rel=1e-5) and moved[4] == pytest.approx(moved[3])
    assert all(0 <= r["mean_share"] <= 1 and 0 <= r["acc"] <= 1 and 0 <= r["ridge_acc"] <= 1 for r in rows)
    monkeypatch.setattr(rates, "RESULTS", tmp_path)
    text = rates.write_table(40, 4, 2, {"mean_share": rates.mean_share(z0), "ridge_acc": 1.0, "chance": 0.1}, rows,
                             [{"n": 40, **rows[1]}])
    assert (tmp_path / "large_n_rates.md").read_text() == text
    assert text.count("\n| 1 | 0.001 | 1e-12 | constant | ") == 1
    assert text.count(f"\n| 3 | 0.001 | 0.001 | {still} | ") == 1
    assert all(text.count(f"\n| {row} | {name} | ") == 1 for row in range(1, 6) for name in rates.TRACED)
    assert text.count("\n| 5 | 0.001 | 0.001 | still after step 2, C's Adam new, C from coef_init | ") == 1
    assert text.endswith(f" | {rows[1]['acc']:.4f} | {rows[1]['ridge_acc']:.4f} |\n") and "\n| 40 | " in text


def test_large_n_rates_real_data_rows_follow_the_large_scale_path(monkeypatch, tmp_path):
    """large_n_rates.py --dataset on 40 rows, a sample of 20: the preset's row labels all rows as
    jaxsc.fit_large_scale does (same ACC), the network is still until the end of the hold (step 10) only in its
    row, and the table has one line per schedule and the per-seed ACC."""
    rates = benchmark_module("large_n_rates")
    x, y, _ = rates.large_problem(40, 1, 1)
    rows = rates.real_data_case(x, y, 20, 1, 10, 10)
    path = jaxsc.fit_large_scale(x, 10, "dsc-l2", sample_size=20, seed=1, verbose=False)
    assert rows[0]["acc_all"] == pytest.approx(jaxsc.metrics.accuracy(y, path.labels))
    moved = [r["trace"]["Z moved"] for r in rows]
    assert [len(m) for m in moved] == [3] * 3 and moved[1][0] < 1e-5 < min(moved[0][0], moved[2][0], moved[1][1])
    monkeypatch.setattr(rates, "RESULTS", tmp_path)
    text = rates.write_real_table("digits", 40, 20, 10, rows)
    assert (tmp_path / "large_n_rates_digits.md").read_text() == text
    assert all(text.count(f"\n| {r['schedule']} | 1 | {r['acc_all']:.4f} ± 0.0000 | ") == 1 for r in rows)
    assert text.count(f"\n| {rows[2]['schedule']} | {rows[2]['acc_all']:.4f} |") == 1


def test_iterative_agreement_stages_and_table(monkeypatch, tmp_path):
    """benchmarks/iterative_agreement.py's stages on a small ridge C of 4 subspaces: each solver's labels as
    ``cluster_coefficients`` gives them uncompiled, the iterative ones with an angle bound; a table row per run."""
    agreement = benchmark_module("iterative_agreement")
    ds = jaxsc.data.union_of_subspaces(n_subspaces=4, dim=3, ambient_dim=40, n_per_subspace=60, noise=0.05, seed=0)
    gram = ds.x @ ds.x.T
    coef = np.linalg.solve(gram + 0.1 * np.eye(len(gram)), gram).astype(np.float32)
    post = jaxsc.cluster.PostConfig(subspace_dim=3, power=2.0)
    row = {"method": "dsc-l2", "seed": 0, "m": 240, "dense as in the run": True}
    for name, change in agreement.SOLVERS.items():
        result, labels, row[f"{name} s"] = agreement.timed_stage(coef, 4, post._replace(**change), 0)
        expected = jaxsc.cluster.cluster_coefficients(coef, 4, post._replace(**change), jax.random.PRNGKey(0))
        np.testing.assert_array_equal(labels, expected.labels)
        assert (result.angle_bound is not None) == name.startswith("iterative")
        row[f"{name} ACC"] = jaxsc.metrics.accuracy(ds.y, labels)
        row[f"{name} ARI"] = 1.0
        if result.angle_bound is not None:
            row[f"{name} angle"] = float(result.angle_bound)
    monkeypatch.setattr(agreement, "RESULTS", tmp_path)
    text = agreement.write_table([row, row])
    assert (tmp_path / "iterative_agreement.md").read_text() == text
    header, rule, *body = text.split("\n\n")[-1].strip().split("\n")
    assert len(body) == 2 and header.count("|") == rule.count("|") == body[0].count("|")
