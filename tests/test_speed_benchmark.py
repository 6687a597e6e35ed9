"""benchmarks/speed.py run small: the large-n section (the path a GPU session runs at n = 70,000) and the
pseudo-graph and relation-weighted reconstruction sections; benchmarks/solver_agreement.py on its synthetic C."""
import numpy as np
from conftest import benchmark_module

from jaxsc._src.cluster import pipeline


def test_large_case_falls_back_to_bfloat16_moments_and_reports_the_iterative_stage(monkeypatch):
    speed = benchmark_module("speed")
    monkeypatch.setattr(pipeline, "LARGE_N", 300)  # the iterative cluster stage at a small n
    real_fit, tried = speed.jaxsc.fit, []

    def fit(x, preset, *args, **kwargs):  # float32 moments "do not fit", as at n = 70,000 on an 80 GB GPU
        tried.append(preset.coef_state_dtype)
        if preset.coef_state_dtype is None:
            raise MemoryError("simulated: the float32 plan does not fit")
        return real_fit(x, preset, *args, **kwargs)

    monkeypatch.setattr(speed.jaxsc, "fit", fit)
    rows = speed.large_case(400, finetune_steps=4, pretrain_steps=4)
    assert tried == [None, "bfloat16"] * 4
    assert [row["start"] for row in rows] == ["constant", "constant-coef-lr-per-n", "constant-lr-per-n", "ridge"]
    assert [(row["coef_lr"], row["net_lr"]) for row in rows] == [(1e-3, 1e-3), (2.5e-3, 1e-3), (2.5e-3, 2.5e-3),
                                                                 (1e-3, 1e-3)]
    for row in rows:
        assert (row["n"], row["state"], row["steps"], row["solver"]) == (400, "bfloat16", 4, "iterative")
        assert 0 < row["acc"] <= 1 and row["peak_bytes"] > 0 and row["cluster_s"] > 0 and row["contrast"] >= 1
    assert len({row["pretrain_s"] for row in rows}) == 1  # one pretraining for all
    refused = {"n": 500, "coef_gib": 0.001, "pretrain_s": 1.0, "start": "ridge", "refused": "does not fit"}
    lines = speed.large_section([*rows, refused])
    assert lines[0] == "## Dense C at large n: DSC-L2 end to end"
    for start, rates in (("constant", "0.001 | 0.001"), ("constant-coef-lr-per-n", "0.0025 | 0.001"),
                         ("constant-lr-per-n", "0.0025 | 0.0025"), ("ridge", "0.001 | 0.001")):
        assert any(line.startswith(f"| 400 | 0.00 | {start} | {rates} | bfloat16 |") and "| iterative |" in line
                   for line in lines)
    assert len({line.count("|") for line in lines if line.startswith("| ")}) == 1  # every row has every column
    assert lines[-1] == "n = 500, ridge start: does not fit."


def test_coefficient_contrast_against_numpy():
    speed = benchmark_module("speed")
    coef = np.random.default_rng(0).standard_normal((7, 7)).astype(np.float32)
    magnitude = np.abs(coef.astype(np.float64))
    np.testing.assert_allclose(speed.coefficient_contrast(coef), magnitude.max(1).mean() / magnitude.mean(),
                               rtol=1e-6)
    np.testing.assert_allclose(speed.coefficient_contrast(np.full((5, 5), -3e-4, np.float32)), 1.0, rtol=1e-6)


def test_pseudo_graph_case_compares_the_blocked_and_whole_forms():
    speed = benchmark_module("speed")
    row = speed.pseudo_graph_case(600, 5, repeats=1)
    assert row["ours_s"] > 0 and row["reference_s"] > 0
    assert row["ours_temp"] < row["reference_temp"]  # 600 rows: blocks of 256, the whole form's n x n arrays
    lines = speed.pseudo_graph_section([row])
    assert lines[-1].startswith("| 600 | 5 |") and lines[-1].count("|") == 8


def test_laplacian_case_compares_the_gram_and_matmul_forms():
    speed = benchmark_module("speed")
    row = speed.laplacian_case(300, 400, repeats=1)
    assert row["ours_s"] > 0 and row["reference_s"] > 0
    assert row["ours_temp"] < row["reference_temp"]  # D > n: the matmul form's n x D arrays and outer product
    lines = speed.laplacian_section([row])
    assert lines[0].startswith("## RGRL's relation-weighted reconstruction")
    assert lines[-1].startswith("| 300 | 400 |") and lines[-1].count("|") == 8


def test_consecutive_calls_the_step_in_a_row_as_one_call():
    speed = benchmark_module("speed")
    calls = []
    block = speed.consecutive(lambda: calls.append(len(calls)) or len(calls), 3)
    assert block() == 3 and calls == [0, 1, 2]


def test_sections_name_the_machine_they_ran_on():
    speed = benchmark_module("speed")
    lines = speed.section_head("Title", "Text.", ["a", "b"])
    assert lines[0] == "## Title" and lines[-2:] == ["| a | b |", "|---|---|"]
    measured = lines[2]
    assert measured.startswith("Measured ") and measured.endswith(". Text.")
    assert "cores" in measured  # the tests run on the CPU


def test_solver_agreement_rows_on_the_speed_benchmarks_c(monkeypatch, tmp_path):
    """benchmarks/solver_agreement.py on a small synthetic C: residuals of the randomized subspace, its labels'
    agreement with the dense solver's, the dense solver's in float32 against float64, and the table it writes."""
    agreement = benchmark_module("solver_agreement")
    speed = benchmark_module("speed")
    coef, labels = speed.synthetic_coefficients(400)
    rows = agreement.agreement_rows("synthetic", coef, labels, speed.CLUSTER_POST, keys=2)
    assert [(r["n"], r["r"], r["key"]) for r in rows] == [(400, 101, 0), (400, 101, 1)]
    for r in rows:
        assert 0 <= r["median_residual"] <= r["max_residual"] < 1
        assert r["at_cut"][0] >= r["at_cut"][1] > 0
        assert r["acc_dense"] == 1.0  # 20 well separated subspaces
        assert 0 < r["ari"] <= 1 and 0 < r["acc_randomized"] <= 1  # here 0.87-0.89: r = 101 of 400 vectors
        assert r["ari_double"] == 1.0  # float64 gives the dense solver's float32 partition on this C
    monkeypatch.setattr(agreement, "RESULTS", tmp_path)
    text = agreement.write_table(rows)
    assert (tmp_path / "solver_agreement.md").read_text() == text
    assert "| synthetic | 400 | 101 |" in text and text.count("\n| synthetic |") == 2
