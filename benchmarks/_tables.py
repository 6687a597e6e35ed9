"""Helpers shared by the benchmark scripts: result files and table cells."""
from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

from jaxsc._src.cli import summarize

RESULTS = Path(__file__).parent / "results"


def mean_std(summary: dict, metric: str) -> str:
    return f"{summary[metric]['mean']:.4f} ± {summary[metric]['std']:.4f}"


def load_rows(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


# Per-seed lists a result may carry besides its own ``seeds``: the baselines run in the same invocation.
BASELINES = ("kmeans_raw", "dae_kmeans")


def _merge(old: list[dict], new: list[dict]) -> list[dict]:
    by_seed = {r["seed"]: r for r in old} | {r["seed"]: r for r in new}
    return [by_seed[s] for s in sorted(by_seed)]


# Preset fields added after results were saved, with the value the code had before them: a saved preset without
# the field is compared as if it had this value.
ADDED_FIELDS = {"distill_form": "sum", "nce_reduction": "mean", "inner_coef": "step", "meta_pretrain_steps": 0,
                "inner_max_relative_step": None, "target": "p2", "matmul_dtype": None, "coef_start": "constant",
                "coef_lr": None}
# Preset fields that act only when a switch of the same preset is on (LRSC's ablation rows): where the switch is
# off the field is left out of the comparison, so a row without the module merges across changes of its form.
SWITCHED_FIELDS = {"distill_form": "distill", "nce_reduction": "nce", "inner_coef": "meta",
                   "meta_pretrain_steps": "meta", "inner_max_relative_step": "meta"}


def _compared(preset: dict) -> dict:
    return {k: v for k, v in preset.items() if k not in SWITCHED_FIELDS or preset.get(SWITCHED_FIELDS[k], True)}


def merge_seeds(result: dict, path: Path) -> dict:
    """``result`` with the seeds already saved in ``path`` by a run of the same method, dataset and preset, so
    that the seeds of one row can be run in separate invocations (a seed run again replaces its old entry).
    The summaries (and the baselines' summaries) are recomputed over the merged seeds."""
    if not path.exists():
        return result
    old = json.loads(path.read_text())
    old["preset"] = {**{k: v for k, v in ADDED_FIELDS.items() if k in result["preset"]}, **old["preset"]}
    # compared as JSON: the saved preset has lists where the fresh one has tuples
    fresh = json.loads(json.dumps({k: result.get(k) for k in ("method", "dataset", "init", "preset", "n")}))
    was, now = _compared(old["preset"]), _compared(fresh["preset"])
    if any(old.get(k) != fresh[k] for k in ("method", "dataset", "init", "n")) or was != now:
        fields = sorted(k for k in set(was) | set(now) if was.get(k, "<absent>") != now.get(k, "<absent>"))
        print(f"replacing {path}: its seeds {[r['seed'] for r in old['seeds']]} ran with another setting "
              f"({', '.join(fields) or 'method, dataset, init or n'})", file=sys.stderr, flush=True)
        return result
    metrics = tuple(result["summary"])
    result["seeds"] = _merge(old["seeds"], result["seeds"])
    result["summary"] = summarize(result["seeds"], metrics)
    for key in BASELINES:
        if key in result and key in old:
            result[key]["seeds"] = _merge(old[key]["seeds"], result[key]["seeds"])
            result[key]["summary"] = summarize(result[key]["seeds"], metrics)
    return result


def save_result(result: dict, path: Path) -> None:
    """Write one run's JSON (dated) under ``benchmarks/results/<suite>/``, merged with the seeds already there
    (:func:`merge_seeds`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result = merge_seeds(result, path)
    result["date"] = datetime.date.today().isoformat()
    path.write_text(json.dumps(result, indent=2))


def diagonal_cell(result: dict) -> str:
    """A table's ``diag(C)`` cell: ``0`` when the run constrained diag(C) = 0, else ``free`` (also for results
    saved before presets had the field)."""
    return "0" if result["preset"].get("zero_diagonal") else "free"


def machine_text(machine: dict) -> str:
    """A result's machine in one line: platform, CPU (recorded since 2026-12-07), jax version, devices."""
    cpu = f", {machine['cpu']}" if machine.get("cpu") else ""
    return f"{machine['platform']}{cpu}, jax {machine['jax']}, {machine['devices']}"


def machine_lines(rows: list[dict]) -> list[str]:
    machines = sorted({machine_text(r["machine"]) for r in rows})
    return ["", "Machine(s): " + "; ".join(machines) + ".", "",
            "Rows absent here were not run (see the closing notes); nothing is estimated.", ""]


def seconds_per_seed(result: dict) -> float:
    return sum(x["seconds"] for x in result["seeds"]) / len(result["seeds"])


def add_common_arguments(parser) -> None:
    """``--seeds`` (default 0..4), ``--data-dir``, ``--table-only`` and ``--quiet``."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--quiet", action="store_true", help="one line per seed instead of training progress")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--table-only", action="store_true")
