"""The large-scale, out-of-sample path (PSSC Alg. 3, RGRL Sec. 5).

1. Draw a random sample of m points (m = 5000 in the papers) and train any DSC-family method on it with the
   MLP autoencoder D-500-500-2000-K: pretrain 50 epochs (mini-batches of 256), fine-tune 30 full-batch epochs.
2. Cluster the sample with the spectral stage on its m x m C.
3. Encode all N points (in batches) and label each point outside the sample by its nearest sample point in
   latent space (1-NN, squared Euclidean distance, batched).

Memory is O(m^2 + N d): the only square matrix is the sample's C, distances are computed ``batch`` rows at a
time against the m sample latents, and no N x N array is ever formed.
"""
from __future__ import annotations

import math
import time
from functools import partial
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsc._src import api
from jaxsc._src.checks import check_n_clusters, check_samples
from jaxsc._src.cluster.pipeline import PostConfig
from jaxsc._src.methods.presets import METHODS, PRESETS, Preset

_LARGE_SCALE_WEIGHTS = {
    # the RGRL MNIST-fullfc script searched b, g in 1e-3..50: the geometric centre 0.5, halved into plain sums
    "rgrl": dict(w_se=0.25, w_raw=0.25),
    "pssc": dict(w_se=0.25),
    "dsc": dict(),
    "udll": dict(),
}


def large_scale_preset(method: str, n_clusters: int, sample_size: int) -> Preset:
    """The method's COIL20 preset with the MLP autoencoder (latent K), 50 pretraining epochs of 256, 30
    fine-tune epochs, and RGRL's MNIST post settings (threshold 0.12, subspace_dim 4, power 5)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    spec = METHODS[method]
    batch = min(256, sample_size)
    return PRESETS[spec.family]["coil20"].replace(
        kernels=(), channels=(), mlp_latent=n_clusters, pretrain_batch=batch,
        pretrain_steps=50 * math.ceil(sample_size / batch), finetune_steps=30, early_stop=False,
        post=PostConfig(threshold=0.12, subspace_dim=4, power=5.0), **_LARGE_SCALE_WEIGHTS[spec.family],
        **dict(spec.changes))


@partial(jax.jit, static_argnums=0)
def _encode(model: nn.Module, params, x):
    return model.apply({"params": params}, x, method="encode").reshape(x.shape[0], -1)


def map_in_batches(fn, x: np.ndarray, batch: int) -> np.ndarray:
    """``fn`` on ``batch`` rows of ``x`` at a time, the last batch zero-padded so every call has one shape
    (one compilation); results concatenated on the host."""
    out = []
    for start in range(0, x.shape[0], batch):
        chunk = x[start:start + batch]
        pad = batch - chunk.shape[0] if x.shape[0] > batch else 0
        chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)]) if pad else chunk
        out.append(np.asarray(fn(jnp.asarray(chunk)))[:chunk.shape[0] - pad])
    return np.concatenate(out)


def encode_in_batches(model: nn.Module, params, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Latent rows of every sample, ``batch`` samples per jitted call (the last batch is padded)."""
    return map_in_batches(lambda chunk: _encode(model, params, chunk), x, batch)


@jax.jit
def _nearest(reference, query):
    sq = jnp.sum(jnp.square(query), 1)[:, None] - 2.0 * query @ reference.T + jnp.sum(jnp.square(reference), 1)
    return jnp.argmin(sq, axis=1)


def nearest_neighbor_labels(reference: np.ndarray, labels: np.ndarray, query: np.ndarray,
                            batch: int = 4096) -> np.ndarray:
    """1-NN: for each query row, the label of the closest ``reference`` row (squared Euclidean), computed
    ``batch`` query rows at a time (memory O(batch * m))."""
    reference, labels = jnp.asarray(reference), np.asarray(labels)
    if query.shape[0] == 0:
        return np.zeros((0,), labels.dtype)
    return labels[map_in_batches(lambda chunk: _nearest(reference, chunk), query, batch)]


def draw_sample(n: int, sample_size: int, seed: int) -> np.ndarray:
    """The sorted indices of the random sample (step 1) that :func:`fit_large_scale` trains on with ``seed``."""
    return np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))


def label_out_of_sample(x: np.ndarray, preset: Preset, autoencoder_params, sample_index: np.ndarray,
                        sample_labels: np.ndarray) -> np.ndarray:
    """Labels of all rows of ``x`` (flattened): the sample's own, and for every other row the label of its nearest
    sample point in the latent space of ``autoencoder_params`` (step 3)."""
    model = api.build_autoencoder(preset, x.shape[1:])
    latent = encode_in_batches(model, autoencoder_params, x * preset.data_scale)
    labels = nearest_neighbor_labels(latent[sample_index], sample_labels, latent)
    labels[sample_index] = sample_labels
    return labels


class LargeScaleResult(NamedTuple):
    """Output of :func:`fit_large_scale`: labels of all N points, the sample's indices, its spectral labels and
    its learned C (m x m, to cluster again with other settings: :func:`jaxsc.cluster_coef`), and wall-clock
    seconds per stage."""

    labels: np.ndarray
    sample_index: np.ndarray
    sample_labels: np.ndarray
    sample_coef: np.ndarray
    seconds: dict


def fit_large_scale(x, n_clusters: int, method: str = "rgrl", *, sample_size: int = 5000, seed: int = 0,
                    preset: Preset | None = None, verbose: bool = True) -> LargeScaleResult:
    """Train ``method`` on a random sample of ``sample_size`` rows of ``x`` (images are flattened), cluster the
    sample, and label the rest by 1-NN in latent space (module docstring)."""
    x = check_samples(x)
    x = x.reshape(x.shape[0], -1)
    n = x.shape[0]
    if not n_clusters <= sample_size <= n:
        raise ValueError(f"sample_size must lie in n_clusters..n = {n_clusters}..{n}, got {sample_size}")
    check_n_clusters(n_clusters, sample_size)
    preset = large_scale_preset(method, n_clusters, sample_size) if preset is None else preset
    sample_index = draw_sample(n, sample_size, seed)
    result = api.run(x[sample_index], n_clusters, preset, seed=seed, verbose=verbose)
    seconds = dict(result.seconds)
    start = time.perf_counter()
    labels = label_out_of_sample(x, preset, result.params["autoencoder"], sample_index, result.labels)
    seconds["out_of_sample"] = time.perf_counter() - start
    return LargeScaleResult(labels, sample_index, result.labels, result.coef, seconds)
