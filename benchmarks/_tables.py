"""Helpers shared by the benchmark scripts: result files and table cells."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def mean_std(summary: dict, metric: str) -> str:
    return f"{summary[metric]['mean']:.4f} ± {summary[metric]['std']:.4f}"


def load_rows(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def save_result(result: dict, path: Path) -> None:
    """Write one run's JSON (dated) under ``benchmarks/results/<suite>/``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result["date"] = datetime.date.today().isoformat()
    path.write_text(json.dumps(result, indent=2))


def machine_lines(rows: list[dict]) -> list[str]:
    machines = sorted({f"{r['machine']['platform']}, jax {r['machine']['jax']}, {r['machine']['devices']}"
                       for r in rows})
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
