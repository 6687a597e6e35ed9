"""Test configuration: point jaxsc at ../shared/datasets when present; real-data tests skip otherwise."""
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if "JAXSC_DATA_DIR" not in os.environ and SHARED.is_dir():
    os.environ["JAXSC_DATA_DIR"] = str(SHARED)
# `jaxsc run` in a test process must not switch jax's persistent compilation cache on for the tests after it
os.environ.setdefault("JAXSC_COMPILE_CACHE", "off")
DATA_DIR = Path(os.environ["JAXSC_DATA_DIR"]) if os.environ.get("JAXSC_DATA_DIR") else None


def _have(*relpaths: str) -> bool:
    return DATA_DIR is not None and all((DATA_DIR / p).is_file() for p in relpaths)


def needs_data(*relpaths: str):
    """Skip unless the benchmark files ``relpaths`` (relative to the data dir) exist."""
    return pytest.mark.skipif(not _have(*relpaths), reason=f"benchmark data {relpaths} not found")


def benchmark_module(name: str):
    """The script ``benchmarks/<name>.py`` imported as a module (benchmarks/ is not a package). The scripts import
    their sibling ``_tables`` as a top-level module, so benchmarks/ goes on ``sys.path`` as when they run."""
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    path = folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digits_subset(classes=(0, 1, 4), per_class=40):
    """The first ``per_class`` images of each class of scikit-learn's digits, labels renumbered 0..K-1."""
    from jaxsc import data

    ds = data.load("digits")
    keep = np.concatenate([np.flatnonzero(ds.y == c)[:per_class] for c in classes])
    return ds.x[keep], np.searchsorted(classes, ds.y[keep])


def numpy_ridge_coefficients(z, reg, zero_diagonal):
    """Row by row: c_i = argmin ||z_i - sum_j c_ij z_j||^2 + reg ||c_i||^2 over the allowed j (j != i with
    ``zero_diagonal``), solved by numpy in float64."""
    n = z.shape[0]
    c = np.zeros((n, n))
    for i in range(n):
        idx = [j for j in range(n) if j != i or not zero_diagonal]
        a = z[idx].astype(np.float64)
        c[i, idx] = np.linalg.solve(a @ a.T + reg * np.eye(len(idx)), a @ z[i])
    return c
