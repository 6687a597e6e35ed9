"""Argument checks shared by the fitting functions and the cluster stage: each raises a ``ValueError`` that
names the problem. The shape checks read static shapes only, so they also run while a jitted function is
traced."""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np


def check_samples(x) -> np.ndarray:
    """float32 images ``(n, H, W, C)`` (``(n, H, W)`` gets a channel) or vectors ``(n, D)``; raises a clear
    error for other shapes or non-finite values, and warns when images lie outside [0, 1], the pixel range
    the presets are set for (the loaders return it; a preset's ``data_scale`` rescales from there)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim not in (2, 4):
        raise ValueError(f"expected images shaped (n, H, W) or (n, H, W, C), or vectors (n, D); got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 samples, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"the input contains {int((~np.isfinite(x)).sum())} NaN or inf values")
    if x.ndim == 4:
        low, high = x.min(), x.max()
        if low < 0.0 or high > 1.0:
            warnings.warn(f"images range over [{low:g}, {high:g}], but the presets are set for pixels in [0, 1] "
                          "(divide 8-bit pixels by 255)")
    return x


def check_n_clusters(n_clusters: int, n: int) -> None:
    """``n_clusters`` must lie in 2..n for n samples."""
    if not 2 <= n_clusters <= n:
        raise ValueError(f"n_clusters must lie in 2..n = {n}, got {n_clusters}")


def check_square(matrix, what: str = "coefficient matrix") -> None:
    """``matrix`` must be n x n."""
    if len(matrix.shape) != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square {what}, got shape {tuple(matrix.shape)}")


def check_module_parameters(params, model, sample_shape: tuple[int, ...], what: str = "autoencoder_params") -> None:
    """``params`` must be ``model``'s parameters for samples of ``sample_shape``: the same names and shapes as
    ``model.init`` gives (computed abstractly, nothing allocated). Raises a ``ValueError`` naming the
    differences, or saying that flax variables ``{'params': ...}`` were passed whole."""
    expected = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((2, *sample_shape)))["params"])
    if isinstance(params, Mapping) and set(params) == {"params"} and "params" not in expected:
        raise ValueError(f"{what} are flax variables {{'params': ...}}; pass their ['params']")

    def shapes(tree):
        return {jax.tree_util.keystr(path): tuple(getattr(leaf, "shape", np.shape(leaf)))
                for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}

    have, want = shapes(params), shapes(expected)
    if have == want:
        return
    missing, unexpected = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    problems = [f"missing {', '.join(missing)}"] if missing else []
    problems += [f"unexpected {', '.join(unexpected)}"] if unexpected else []
    problems += [f"{name} has shape {have[name]}, expected {want[name]}" for name in want
                 if name in have and have[name] != want[name]]
    raise ValueError(f"{what} do not fit the autoencoder {type(model).__name__} for samples of shape "
                     f"{tuple(sample_shape)}: " + "; ".join(problems))
