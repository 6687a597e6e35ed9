"""Clustering metrics (host-side numpy; labels are small integer vectors).

ACC and precision use the Hungarian matching of predicted clusters to classes (``scipy.optimize.
linear_sum_assignment`` on the contingency table). NMI is scikit-learn's default: arithmetic-mean
normalisation, NMI = I(Y; P) / ((H(Y) + H(P)) / 2).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def _check(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"label vectors differ in length: {y_true.shape[0]} true vs {y_pred.shape[0]} predicted")
    if y_true.size == 0:
        raise ValueError("empty label vectors")
    for name, labels in (("true", y_true), ("predicted", y_pred)):
        bad = int((~np.isfinite(labels)).sum()) if labels.dtype.kind in "fc" else 0
        if bad:
            raise ValueError(f"the {name} labels contain {bad} NaN or inf values")
    return y_true, y_pred


def contingency(y_true, y_pred) -> np.ndarray:
    """N_kc = #{i : pred_i = k, true_i = c} (rows: predicted clusters, columns: classes)."""
    y_true, y_pred = _check(y_true, y_pred)
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    return table


def _matching(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return linear_sum_assignment(-table)


def accuracy(y_true, y_pred) -> float:
    """ACC = max over one-to-one maps m of (1/n) sum_i [true_i = m(pred_i)] (Hungarian algorithm)."""
    table = contingency(y_true, y_pred)
    rows, cols = _matching(table)
    return float(table[rows, cols].sum() / table.sum())


def precision(y_true, y_pred) -> float:
    """Macro precision after the Hungarian matching: mean over classes c of TP_c / #{i : m(pred_i) = c},
    a class with no matched cluster counting 0 (scikit-learn's ``precision_score(average='macro')`` on
    the matched labels)."""
    table = contingency(y_true, y_pred)
    rows, cols = _matching(table)
    per_class = np.zeros(table.shape[1])
    per_class[cols] = table[rows, cols] / np.maximum(table[rows].sum(1), 1)
    return float(per_class.mean())


def purity(y_true, y_pred) -> float:
    """Purity = (1/n) sum_k max_c N_kc."""
    table = contingency(y_true, y_pred)
    return float(table.max(1).sum() / table.sum())


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(y_true, y_pred) -> float:
    """NMI = I(Y; P) / ((H(Y) + H(P)) / 2) (scikit-learn's default, arithmetic normalisation)."""
    table = contingency(y_true, y_pred).astype(np.float64)
    n = table.sum()
    h_true, h_pred = _entropy(table.sum(0)), _entropy(table.sum(1))
    if h_true == 0 or h_pred == 0:
        return 1.0 if h_true == h_pred else 0.0
    nz = table > 0
    outer = np.outer(table.sum(1), table.sum(0))
    mutual = float((table[nz] / n * np.log(table[nz] * n / outer[nz])).sum())
    return max(mutual / ((h_true + h_pred) / 2), 0.0)


def ari(y_true, y_pred) -> float:
    """Adjusted Rand index (Hubert & Arabie) from pair counts of the contingency table."""
    table = contingency(y_true, y_pred).astype(np.float64)
    pairs = lambda v: (v * (v - 1) / 2).sum()  # noqa: E731
    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / pairs(np.array([table.sum()]))
    maximum = (rows + cols) / 2
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


METRICS = {"acc": accuracy, "nmi": nmi, "ari": ari, "purity": purity, "precision": precision}


def evaluate(y_true, y_pred) -> dict[str, float]:
    """All of :data:`METRICS` as a dict."""
    return {name: fn(y_true, y_pred) for name, fn in METRICS.items()}
