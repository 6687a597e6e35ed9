"""jaxsc: deep subspace clustering in JAX.

Public modules: :mod:`jaxsc.data` (datasets), :mod:`jaxsc.models` (autoencoders, self-expression, classifier
head, reference weights), :mod:`jaxsc.losses` (pure loss terms), :mod:`jaxsc.train` (the jitted training loop
and objectives), :mod:`jaxsc.cluster` (affinity and spectral stage), :mod:`jaxsc.metrics`,
:mod:`jaxsc.presets` (methods and per-dataset settings).
"""
from jaxsc import cluster, data, losses, metrics, models, presets, train
from jaxsc._src.api import (FitResult, RunResult, build_autoencoder, cluster as cluster_coef, compile_finetune_step,
                            fit, pretrain, run)
from jaxsc._src.estimator import DSC, LRSC, PSSC, RGRL, SAI, UDLL, SubspaceClustering
from jaxsc._src.methods.lrsc import LRSCResult, fit_lrsc
from jaxsc._src.methods.sai import SAIEpoch, SAIResult, fit_sai, pretrain_dae
from jaxsc._src.methods.out_of_sample import LargeScaleResult, fit_large_scale

__version__ = "0.1.0"
__all__ = ["DSC", "FitResult", "LRSC", "LRSCResult", "LargeScaleResult", "PSSC", "RGRL", "RunResult", "SAI",
           "SAIEpoch", "SAIResult", "SubspaceClustering", "UDLL", "build_autoencoder", "cluster", "cluster_coef",
           "compile_finetune_step", "data", "fit", "fit_large_scale", "fit_lrsc", "fit_sai", "losses", "metrics",
           "models", "presets", "pretrain", "pretrain_dae", "run", "train"]
