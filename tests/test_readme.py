"""The README's results table is the one generated from benchmarks/results/, and its commands exist."""
from pathlib import Path

from conftest import benchmark_module

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_table_matches_the_result_files():
    module = benchmark_module("readme_table")
    readme = (ROOT / "README.md").read_text()
    assert readme == module.render(readme), "run: python benchmarks/readme_table.py"
    assert len(list((ROOT / "benchmarks" / "results").glob("*/*.json"))) == module.results_table().count("\n") - 1


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("```")[1]
    assert "pip install . && jaxsc run --dataset digits" in head
    assert 'pip install ".[test]" && python -m pytest -q tests' in head
