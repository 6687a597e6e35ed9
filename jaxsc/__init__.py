"""jaxsc: deep subspace clustering in JAX.

Public modules: :mod:`jaxsc.data` (datasets), :mod:`jaxsc.models` (autoencoders, self-expression, reference
weights), :mod:`jaxsc.losses` (pure loss terms), :mod:`jaxsc.train` (the jitted training loop),
:mod:`jaxsc.cluster` (affinity and spectral stage), :mod:`jaxsc.metrics`, :mod:`jaxsc.presets`.
"""
from jaxsc import cluster, data, losses, metrics, models, presets, train
from jaxsc._src.api import FitResult, RunResult, cluster as cluster_coef, fit, pretrain, run
from jaxsc._src.estimator import DSC

__version__ = "0.1.0"
__all__ = ["DSC", "FitResult", "RunResult", "cluster", "cluster_coef", "data", "fit", "losses", "metrics",
           "models", "presets", "pretrain", "run", "train"]
