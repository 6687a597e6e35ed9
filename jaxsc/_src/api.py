"""Functional core: ``pretrain``, ``fit``, ``cluster`` and ``run`` (all three in sequence).

Every method of the DSC family (see :data:`jaxsc.presets.METHODS`) runs through these functions; a method is
a :class:`jaxsc.presets.Preset`.
"""
from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO

from jaxsc._src.checks import check_module_parameters, check_n_clusters, check_samples
from jaxsc._src.cluster.pipeline import ClusterResult, PostConfig, cluster_coefficients, compile_cluster_stage
from jaxsc._src.compile_ahead import CompiledAhead
from jaxsc._src.losses.locality import adaptive_neighbors
from jaxsc._src.methods.presets import Preset
from jaxsc._src.methods.self_expressive import (COEF_STARTS, ReconstructionObjective, SelfExpressiveObjective,
                                                init_self_expressive_params, ridge_start)
from jaxsc._src.models.autoencoders import ConvAutoencoder, MLPAutoencoder
from jaxsc._src.models.self_expression import init_coefficients
from jaxsc._src.train.loop import EarlyStop, compile_train_step, sample_matrix_shardings, train


def build_autoencoder(preset: Preset, sample_shape: tuple[int, ...]) -> nn.Module:
    """The conv autoencoder for ``(H, W, C)`` samples, the MLP autoencoder for ``(D,)`` samples."""
    if len(sample_shape) == 1:
        return MLPAutoencoder(int(sample_shape[0]), preset.mlp_latent, tuple(preset.mlp_hidden))
    return ConvAutoencoder(tuple(int(s) for s in sample_shape), tuple(preset.kernels), tuple(preset.channels))


def build_objective(preset: Preset, model: nn.Module) -> SelfExpressiveObjective:
    """The fine-tuning objective a preset describes: every field the two share by name (loss weights and forms,
    dtypes, ``zero_diagonal``), ``finetune_lr`` as the network's rate and ``coef_lr`` as C's (default
    ``finetune_lr``)."""
    shared = ({f.name for f in dataclasses.fields(SelfExpressiveObjective)}
              & {f.name for f in dataclasses.fields(Preset)})
    if not preset.coef_rate > 0:
        raise ValueError(f"C's learning rate must be positive, got coef_lr = {preset.coef_lr!r}")
    return SelfExpressiveObjective(model, lr_net=preset.finetune_lr, lr_coef=preset.coef_rate,
                                   **{name: getattr(preset, name) for name in sorted(shared)})


def pretrain(x, preset: Preset, *, seed: int = 0, steps: int | None = None, verbose: bool = True) -> Any:
    """Autoencoder pretraining on reconstruction: returns the autoencoder's parameters.

    ``x`` are [0, 1] images or vectors (scaled by ``preset.data_scale`` here); ``steps`` overrides the preset.
    """
    x = check_samples(x) * preset.data_scale
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
    """Output of :func:`fit`: the parameters ``{'autoencoder', 'coef'[, 'head']}``, C itself, the loss history
    ``[(step, loss)]`` and the number of fine-tuning steps taken."""

    params: Any
    coef: jax.Array
    history: list
    steps: int


def fit(x, preset: Preset, autoencoder_params: Any, *, n_clusters: int | None = None, seed: int = 0,
        steps: int | None = None, mesh=None, extras: dict | None = None,
        check_memory: bool = True, log_every: int | None = None, stop_check=None,
        compiled_step: CompiledAhead | None = None, verbose: bool = True) -> FitResult:
    """Full-batch fine-tuning of the autoencoder and C (and PSSC's head) from pretrained ``autoencoder_params``.

    ``n_clusters`` is needed by presets with pseudo-supervision (the head has K outputs); ``seed`` initialises
    that head. ``mesh``: split C and its optimiser state by rows over these devices
    (:func:`jaxsc.train.shard_sample_matrices`). ``extras``: arrays passed with the data (e.g. LRSC's
    ``{'teacher_weights': W}``, the heat kernel of its teacher's features). ``check_memory``: see
    :func:`jaxsc.train.train` (a ``MemoryError`` with the options that shrink the run, raised before C is
    allocated, when XLA's plan does not fit). ``log_every``: steps between progress reads (default a tenth of
    the run); ``stop_check``: called with the parameters at each read, ``True`` stops (also a hook to trace a
    run, e.g. ``benchmarks/terms_trace.py``). ``compiled_step``: the step from :func:`compile_finetune_step`
    (:func:`jaxsc.train.train`'s).
    """
    objective, params, data = _finetune_problem(x, preset, autoencoder_params, n_clusters, seed, extras, mesh)
    steps = preset.finetune_steps if steps is None else steps
    result = train(objective, params, data, steps, early_stop=EarlyStop() if preset.early_stop else None,
                   log_every=max(steps // 10, 1) if log_every is None else log_every, verbose=verbose,
                   desc="fine-tune", mesh=mesh, stop_check=stop_check, check_memory=check_memory,
                   compiled_step=compiled_step, give_sample_matrices=True)
    return FitResult(result.params, result.params["coef"], result.history, result.steps)


def _finetune_problem(x, preset: Preset, autoencoder_params, n_clusters: int | None, seed: int,
                      extras: dict | None = None, mesh=None):
    """``(objective, params, data)`` of :func:`fit`'s training; under ``jax.eval_shape`` with abstract
    ``autoencoder_params``, their shapes and dtypes. With ``mesh``, C is created split by rows over it."""
    x = check_samples(x) * preset.data_scale
    model = build_autoencoder(preset, x.shape[1:])
    check_module_parameters(autoencoder_params, model, x.shape[1:])
    objective = build_objective(preset, model)
    head = {}
    if objective.uses_head:
        if n_clusters is None:
            raise ValueError("this preset trains a classifier head (w_graph or w_label > 0): pass n_clusters")
        latent = jax.eval_shape(lambda p, v: model.apply({"params": p}, v, method="encode"), autoencoder_params,
                                jax.ShapeDtypeStruct((1, *x.shape[1:]), jnp.float32))
        head = dict(latent_dim=int(np.prod(latent.shape[1:])), n_clusters=n_clusters,
                    key=jax.random.PRNGKey(seed))
    params = init_self_expressive_params(autoencoder_params, x.shape[0],
                                         initial_coef(objective, preset, autoencoder_params, x, mesh), **head)
    data = finetune_data(preset, model, autoencoder_params, x)
    if extras:
        data = {**(data if isinstance(data, dict) else {"x": data}), **extras}
    return objective, params, data


def initial_coef(objective: SelfExpressiveObjective, preset: Preset, autoencoder_params, x, mesh=None):
    """C's start (``preset.coef_start``): ``preset.coef_init`` (a number: C filled with it) or
    :func:`jaxsc.train.ridge_start`; with ``mesh``, an ``(n, n)`` array created split by rows over it, so that no
    device ever holds all of C (:func:`jaxsc.train.sample_matrix_shardings`)."""
    if preset.coef_start not in COEF_STARTS:
        raise ValueError(f"unknown coef_start {preset.coef_start!r}; choose one of {COEF_STARTS}")
    n = x.shape[0]
    if mesh is None:
        return ridge_start(objective, autoencoder_params, x) if preset.coef_start == "ridge" else preset.coef_init
    rows = sample_matrix_shardings(jax.ShapeDtypeStruct((n, n), jnp.float32), n, mesh)
    if preset.coef_start == "ridge":
        return jax.jit(ridge_start, static_argnums=0, out_shardings=rows)(objective, autoencoder_params, x)
    return jax.jit(partial(init_coefficients, n, preset.coef_init), out_shardings=rows)()


def compile_finetune_step(x, preset: Preset, *, n_clusters: int | None = None, seed: int = 0) -> CompiledAhead:
    """:func:`fit`'s training step for ``x`` and ``preset`` compiled in a background thread before the
    pretrained autoencoder exists (:func:`jaxsc.train.compile_train_step`), for :func:`fit`'s ``compiled_step``:
    :func:`run` starts it before pretraining, so that the two overlap."""
    shape = np.shape(x)[1:]
    model = build_autoencoder(preset, shape)
    autoencoder = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((2, *shape)))["params"])
    params, data = jax.eval_shape(lambda ae: _finetune_problem(x, preset, ae, n_clusters, seed)[1:], autoencoder)
    return compile_train_step(build_objective(preset, model), params, data,
                              early_stop=EarlyStop() if preset.early_stop else None)


def finetune_data(preset: Preset, model, autoencoder_params, x):
    """What the fine-tune objective reads: the samples ``x`` (already scaled by ``preset.data_scale``), with UDLL's
    prior graph (:func:`jaxsc.losses.adaptive_neighbors` on the pretrained latent rows, ``preset.neighbors``
    neighbours each) as ``{'x', 'neighbor_index', 'neighbor_weight'}`` when ``preset.w_local > 0``."""
    data = jnp.asarray(x)
    if preset.w_local > 0:
        index, weight = adaptive_neighbors(model.apply({"params": autoencoder_params}, data, method="encode"),
                                           preset.neighbors)
        data = {"x": data, "neighbor_index": index, "neighbor_weight": weight}
    return data


def cluster(coef, n_clusters: int, post: PostConfig = PostConfig(), *, seed: int = 0) -> ClusterResult:
    """The jitted cluster stage on a learned C (see :func:`jaxsc.cluster.cluster_coefficients`)."""
    return cluster_coefficients(coef, n_clusters, post, jax.random.PRNGKey(seed))


class RunResult(NamedTuple):
    """Output of :func:`run`: labels, C, affinity (dense, or the sparse top-k BCOO graph of the iterative cluster
    stage used above ``jaxsc.cluster.LARGE_N`` samples), fitted parameters, wall-clock seconds per stage and the
    fine-tuning loss history ``[(step, loss)]``; ``fitted``, the :class:`FitResult` behind them."""

    labels: np.ndarray
    coef: np.ndarray
    affinity: np.ndarray
    params: Any
    seconds: dict
    history: list
    fitted: FitResult


def run(x, n_clusters: int, preset: Preset, *, seed: int = 0, autoencoder_params: Any = None, mesh=None,
        fitted: FitResult | None = None, verbose: bool = True) -> RunResult:
    """Pretrain (unless ``autoencoder_params`` are given), fine-tune (C split over ``mesh`` when given),
    cluster; without a mesh, the fine-tune step compiles in a background thread during pretraining
    (:func:`compile_finetune_step`) and the cluster stage during the fine-tune
    (:func:`jaxsc.cluster.compile_cluster_stage`). ``fitted``: a :class:`FitResult` of ``x`` to cluster instead
    of pretraining and fine-tuning (the fine-tune from fixed weights is deterministic, so seeds that differ only
    in the cluster stage share one)."""
    x = check_samples(x)
    check_n_clusters(n_clusters, x.shape[0])
    seconds = {}
    start = time.perf_counter()
    step = stage = None
    if autoencoder_params is None and fitted is None:
        if mesh is None:  # the fine-tune step compiles while the autoencoder pretrains
            step = compile_finetune_step(x, preset, n_clusters=n_clusters, seed=seed)
        autoencoder_params = pretrain(x, preset, seed=seed, verbose=verbose)
    seconds["pretrain"] = time.perf_counter() - start
    start = time.perf_counter()
    if fitted is None:
        if mesh is None:  # the cluster stage compiles while C trains
            stage = compile_cluster_stage(x.shape[0], n_clusters, preset.post)
        fitted = fit(x, preset, autoencoder_params, n_clusters=n_clusters, seed=seed, mesh=mesh,
                     compiled_step=step, verbose=verbose)
    elif fitted.coef.shape != (x.shape[0], x.shape[0]):
        raise ValueError(f"fitted C has shape {fitted.coef.shape}, expected ({x.shape[0]}, {x.shape[0]})")
    seconds["finetune"] = time.perf_counter() - start
    start = time.perf_counter()
    clustered = cluster_coefficients(fitted.coef, n_clusters, preset.post, jax.random.PRNGKey(seed), compiled=stage)
    labels = np.asarray(clustered.labels)
    seconds["cluster"] = time.perf_counter() - start
    affinity = clustered.affinity if isinstance(clustered.affinity, BCOO) else np.asarray(clustered.affinity)
    return RunResult(labels, np.asarray(fitted.coef), affinity, fitted.params, seconds, fitted.history, fitted)
