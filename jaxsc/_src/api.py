"""Functional core: ``pretrain``, ``fit``, ``cluster`` and ``run`` (all three in sequence)."""
from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsc._src.cluster.pipeline import ClusterResult, PostConfig, cluster_coefficients
from jaxsc._src.methods.dsc import DSCObjective, ReconstructionObjective, init_dsc_params
from jaxsc._src.methods.presets import DSCPreset
from jaxsc._src.models.autoencoders import ConvAutoencoder
from jaxsc._src.train.loop import EarlyStop, train


def check_images(x) -> np.ndarray:
    """float32 NHWC images; raises a clear error for other shapes or non-finite values."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"expected images shaped (n, H, W) or (n, H, W, C), got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 samples, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"the input contains {int((~np.isfinite(x)).sum())} NaN or inf values")
    return x


def build_autoencoder(preset: DSCPreset, image_shape: tuple[int, int, int]) -> ConvAutoencoder:
    return ConvAutoencoder(tuple(int(s) for s in image_shape), tuple(preset.kernels), tuple(preset.channels))


def pretrain(x, preset: DSCPreset, *, seed: int = 0, steps: int | None = None, verbose: bool = True) -> Any:
    """Autoencoder pretraining on reconstruction: returns the autoencoder's parameters.

    ``x`` are [0, 1] images (scaled by ``preset.data_scale`` here); ``steps`` overrides the preset.
    """
    x = check_images(x) * preset.data_scale
    model = build_autoencoder(preset, x.shape[1:])
    init_key, order_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key, jnp.asarray(x[:2]))["params"]
    steps = preset.pretrain_steps if steps is None else steps
    batch = None if preset.pretrain_batch is None else min(preset.pretrain_batch, x.shape[0])
    result = train(ReconstructionObjective(model, preset.pretrain_lr), params, jnp.asarray(x), steps,
                   key=order_key, batch_size=batch, log_every=max(steps // 10, 1), verbose=verbose,
                   desc="pretrain")
    return result.params


class FitResult(NamedTuple):
    """Output of :func:`fit`: the parameters ``{'autoencoder', 'coef'}``, C itself, the loss history
    ``[(step, loss)]`` and the number of fine-tuning steps taken."""

    params: Any
    coef: jax.Array
    history: list
    steps: int


def fit(x, preset: DSCPreset, autoencoder_params: Any, *, penalty: str = "l2", steps: int | None = None,
        matmul_dtype: str | None = None, verbose: bool = True) -> FitResult:
    """DSC fine-tuning of the autoencoder and C on the full batch, from pretrained ``autoencoder_params``."""
    x = check_images(x) * preset.data_scale
    model = build_autoencoder(preset, x.shape[1:])
    objective = DSCObjective(model, preset.w_rec, preset.w_reg, preset.w_se, penalty, preset.zero_diagonal,
                             preset.finetune_lr, preset.finetune_lr, matmul_dtype)
    params = init_dsc_params(autoencoder_params, x.shape[0], preset.coef_init)
    steps = preset.finetune_steps if steps is None else steps
    result = train(objective, params, jnp.asarray(x), steps, early_stop=EarlyStop() if preset.early_stop else None,
                   log_every=max(steps // 10, 1), verbose=verbose, desc="fine-tune")
    return FitResult(result.params, result.params["coef"], result.history, result.steps)


def cluster(coef, n_clusters: int, post: PostConfig = PostConfig(), *, seed: int = 0) -> ClusterResult:
    """The jitted cluster stage on a learned C (see :func:`jaxsc.cluster.cluster_coefficients`)."""
    return cluster_coefficients(coef, n_clusters, post, jax.random.PRNGKey(seed))


class RunResult(NamedTuple):
    """Output of :func:`run`: labels, C, affinity, fitted parameters and wall-clock seconds per stage."""

    labels: np.ndarray
    coef: np.ndarray
    affinity: np.ndarray
    params: Any
    seconds: dict


def run(x, n_clusters: int, preset: DSCPreset, *, seed: int = 0, penalty: str = "l2",
        autoencoder_params: Any = None, matmul_dtype: str | None = None, verbose: bool = True) -> RunResult:
    """Pretrain (unless ``autoencoder_params`` are given), fine-tune, cluster."""
    x = check_images(x)
    if not 2 <= n_clusters <= x.shape[0]:
        raise ValueError(f"n_clusters must lie in 2..n = {x.shape[0]}, got {n_clusters}")
    seconds = {}
    start = time.perf_counter()
    if autoencoder_params is None:
        autoencoder_params = pretrain(x, preset, seed=seed, verbose=verbose)
    seconds["pretrain"] = time.perf_counter() - start
    start = time.perf_counter()
    fitted = fit(x, preset, autoencoder_params, penalty=penalty, matmul_dtype=matmul_dtype, verbose=verbose)
    seconds["finetune"] = time.perf_counter() - start
    start = time.perf_counter()
    clustered = cluster(fitted.coef, n_clusters, preset.post, seed=seed)
    labels = np.asarray(clustered.labels)
    seconds["cluster"] = time.perf_counter() - start
    return RunResult(labels, np.asarray(fitted.coef), np.asarray(clustered.affinity), fitted.params, seconds)
