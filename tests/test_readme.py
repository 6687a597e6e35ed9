"""The README's results table is the one generated from benchmarks/results/, and its commands exist."""
from pathlib import Path

from conftest import benchmark_module

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_table_matches_the_result_files():
    module = benchmark_module("readme_table")
    readme = (ROOT / "README.md").read_text()
    assert readme == module.render(readme), "run: python benchmarks/readme_table.py"
    assert len(list((ROOT / "benchmarks" / "results").glob("*/*.json"))) == module.results_table().count("\n") - 1


def test_variant_is_the_file_name_less_dataset_method_and_init():
    variant = benchmark_module("readme_table").variant
    assert variant({"file": "x/orl-rgrl-sc-script-encoder.json", "dataset": "orl", "method": "rgrl-sc",
                    "init": "pretrain"}) == "script-encoder"
    assert variant({"file": "x/orl-rgrl.json", "dataset": "orl", "method": "rgrl", "init": "pretrain"}) == ""
    assert variant({"file": "x/coil20-pretrain.json", "dataset": "coil20", "method": "dsc-l2",
                    "init": "pretrain"}) == ""
    assert variant({"file": "x/mnist-0-4-+task-first-order.json", "dataset": "mnist-test", "protocol": "mnist-0-4",
                    "method": "lrsc", "row": "+task", "init": "lrsc"}) == "first-order"
    assert variant({"file": "x/bbc-mlp-kl-target-first-sai-hoe.json", "dataset": "bbc", "method": "sai-hoe",
                    "init": "dae"}) == "mlp-kl-target-first"
    for stem, tag in (("coil20-rgrl-reference", ""), ("coil20-rgrl-diag-free-reference", "diag-free")):
        assert variant({"file": f"x/{stem}.json", "dataset": "coil20", "method": "rgrl", "init": "reference"}) == tag


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("```")[1]
    assert "pip install . && jaxsc run --dataset digits" in head
    assert 'pip install ".[test]" && python -m pytest -q -n 2 tests' in head
