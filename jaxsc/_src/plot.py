"""Figures for subspace clustering runs (matplotlib, the ``plot`` extra). Every function draws on ``ax`` (a new
figure when ``None``) and returns the ``Axes``; :func:`save_run_figures` writes the usual set as PNG files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxsc._src.metrics import contingency


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("jaxsc.plot needs matplotlib: pip install 'jaxsc[plot]'") from err
    return plt


def _axes(ax, size=(4.5, 4.0)):
    if ax is not None:
        return ax
    return _pyplot().subplots(figsize=size)[1]


def sort_by_label(matrix, labels) -> np.ndarray:
    """``matrix[order][:, order]`` with samples ordered by label (stable), so clusters form diagonal blocks."""
    matrix, labels = np.asarray(matrix), np.asarray(labels)
    if matrix.shape != (labels.shape[0], labels.shape[0]):
        raise ValueError(f"matrix shape {matrix.shape} does not match {labels.shape[0]} labels")
    order = np.argsort(labels, kind="stable")
    return matrix[np.ix_(order, order)]


def plot_affinity(matrix, labels, ax=None, title: str = "affinity sorted by label"):
    """|matrix| (an affinity or C) with rows and columns sorted by ``labels``."""
    ax = _axes(ax)
    ax.imshow(np.abs(sort_by_label(matrix, labels)), cmap="viridis", interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([]), ax.set_yticks([])
    return ax


def plot_training_curve(history, ax=None, title: str = "training loss"):
    """Loss against step from a ``[(step, loss)]`` history (log scale when the loss stays positive)."""
    history = np.asarray(history, dtype=float)
    if history.ndim != 2 or history.shape[1] != 2 or len(history) == 0:
        raise ValueError("history must be a non-empty list of (step, loss) pairs")
    ax = _axes(ax, (5.0, 3.5))
    ax.plot(history[:, 0], history[:, 1], marker="o", markersize=3)
    if np.all(history[:, 1] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_title(title)
    return ax


def plot_embedding(z, labels, ax=None, title: str = "latent Z (first two principal components)"):
    """The latent rows projected on their first two principal components, coloured by ``labels``."""
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    centred = z - z.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    ax = _axes(ax)
    ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(labels), cmap="tab20", s=6)
    ax.set_title(title), ax.set_xticks([]), ax.set_yticks([])
    return ax


def plot_confusion(y_true, y_pred, ax=None, title: str = "confusion after Hungarian matching"):
    """Contingency table with predicted clusters reordered by the Hungarian matching (a perfect clustering is
    diagonal)."""
    from scipy.optimize import linear_sum_assignment

    table = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(-table)
    order = np.argsort(cols)
    matched = list(rows[order]) + [r for r in range(table.shape[0]) if r not in set(rows)]
    ax = _axes(ax)
    ax.imshow(table[matched], cmap="Blues", interpolation="nearest")
    ax.set_xlabel("class"), ax.set_ylabel("cluster (matched)"), ax.set_title(title)
    return ax


def save_run_figures(out_dir, *, y_true, labels, affinity=None, history=None, z=None,
                     prefix: str = "") -> list[Path]:
    """Write the confusion PNG and, when given, the affinity, training-curve and embedding PNGs; returns their
    paths."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [("confusion", lambda ax: plot_confusion(y_true, labels, ax))]
    if affinity is not None:
        figures.append(("affinity", lambda ax: plot_affinity(affinity, y_true, ax)))
    if history:
        figures.append(("training", lambda ax: plot_training_curve(history, ax)))
    if z is not None:
        figures.append(("embedding", lambda ax: plot_embedding(z, labels, ax)))
    paths = []
    for name, draw in figures:
        fig, ax = plt.subplots(figsize=(4.5, 4.0))
        draw(ax)
        fig.tight_layout()
        paths.append(out / f"{prefix}{name}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
