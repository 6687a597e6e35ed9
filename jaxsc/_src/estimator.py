"""scikit-learn estimators over the functional core."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from jaxsc._src import api
from jaxsc._src.checks import check_samples
from jaxsc._src.methods.lrsc import LRSCPreset, fit_lrsc
from jaxsc._src.methods.presets import get_preset
from jaxsc._src.methods.sai import fit_sai, get_sai_preset


class _Estimator(ClusterMixin, BaseEstimator):
    """scikit-learn's estimator protocol over the explicit constructor arguments and the preset fields passed
    as ``**overrides``: ``get_params`` lists both, ``set_params`` sets either (an unknown preset field is named
    by ``fit``), so ``sklearn.base.clone`` and parameter searches work; ``fit_predict`` is ``fit(x).labels_``."""

    def get_params(self, deep: bool = True) -> dict:
        return {**super().get_params(deep=False), **self.overrides}

    def set_params(self, **params) -> "_Estimator":
        explicit = self._get_param_names()
        for name, value in params.items():
            if name in explicit:
                setattr(self, name, value)
            else:
                self.overrides[name] = value
        return self


class SubspaceClustering(_Estimator):
    """Any method of :data:`jaxsc.presets.METHODS` as an estimator.

    Example::

        model = jaxsc.SubspaceClustering(n_clusters=20, preset="coil20", method="rgrl").fit(images)
        model.labels_, model.coef_, model.affinity_

    Args:
      n_clusters: number of clusters K (2 <= K <= n).
      preset: a dataset name with a preset for this method (see :data:`jaxsc.presets.PRESETS`), or ``None`` to
        derive one from the sample shape.
      method: a name of :data:`jaxsc.presets.METHODS` (``dsc-l2``, ``rgrl``, ``pssc``, ...); ``None``: the
        class's own (``dsc-l2`` here, ``rgrl`` for :class:`RGRL`, ...).
      seed: seed of initialisation, mini-batch order and the cluster stage.
      autoencoder_params: start fine-tuning from these parameters instead of pretraining (e.g.
        ``jaxsc.models.load_reference_weights(name)["params"]``: that function returns flax variables).
      verbose: print progress lines.
      **overrides: fields of :class:`jaxsc.presets.Preset` to change (e.g. ``finetune_steps=10``).

    Attributes (after ``fit``): ``labels_``, ``coef_`` (C), ``affinity_``, ``params_``, ``seconds_``.
    """

    default_method = "dsc-l2"

    def __init__(self, n_clusters: int, preset: str | None = None, *, method: str | None = None, seed: int = 0,
                 autoencoder_params=None, verbose: bool = False, **overrides):
        self.n_clusters, self.preset, self.method, self.seed = n_clusters, preset, method, seed
        self.autoencoder_params, self.verbose = autoencoder_params, verbose
        self.overrides = overrides

    def fit(self, x, y=None) -> "SubspaceClustering":
        """Fit on images ``(n, H, W[, C])`` in [0, 1] or vectors ``(n, D)``; ``y`` is ignored."""
        x = check_samples(x)
        settings = get_preset(self.preset, x.shape[1:], self.method or self.default_method).replace(**self.overrides)
        result = api.run(x, self.n_clusters, settings, seed=self.seed, autoencoder_params=self.autoencoder_params,
                         verbose=self.verbose)
        self.labels_, self.coef_, self.affinity_ = result.labels, result.coef, result.affinity
        self.params_, self.seconds_ = result.params, result.seconds
        return self


class SAI(_Estimator):
    """SAI (sample-assignment invariance prior) as an estimator: DAE pretraining, k-means centres, then the KL
    between two soft assignments (:func:`jaxsc.fit_sai`).

    Args:
      n_clusters: number of clusters K.
      variant: ``"homo"``, ``"hoe"`` (default), ``"hot"`` or ``"hit"``.
      preset: a name of ``jaxsc.presets.SAI_PRESETS`` or ``None`` for the default settings.
      seed: seed of initialisation, corruption, batch order and k-means.
      verbose: print progress lines.
      **overrides: fields of :class:`jaxsc.presets.SAIPreset` (e.g. ``encoder="cnn"``, ``max_epochs=50``).

    Attributes (after ``fit``): ``labels_``, ``kmeans_labels_`` (DAE+k-means), ``params_``, ``epochs_``,
    ``seconds_``, ``trace_`` (the per-epoch :class:`jaxsc.SAIEpoch` list).
    """

    def __init__(self, n_clusters: int, variant: str = "hoe", preset: str | None = None, *, seed: int = 0,
                 verbose: bool = False, **overrides):
        self.n_clusters, self.variant, self.preset, self.seed = n_clusters, variant, preset, seed
        self.verbose, self.overrides = verbose, overrides

    def fit(self, x, y=None) -> "SAI":
        """Fit on images or vectors; ``y`` is ignored."""
        result = fit_sai(x, self.n_clusters, self.variant, get_sai_preset(self.preset).replace(**self.overrides),
                         seed=self.seed, verbose=self.verbose)
        self.labels_, self.kmeans_labels_, self.params_ = result.labels, result.kmeans_labels, result.params
        self.epochs_, self.seconds_, self.trace_ = result.epochs, result.seconds, result.trace
        return self


class LRSC(_Estimator):
    """LRSC (subspace clustering with external data) as an estimator (:func:`jaxsc.fit_lrsc`).

    Example::

        model = jaxsc.LRSC(n_clusters=5).fit(x_target, external=(x_external, y_external))

    Args:
      n_clusters: number of clusters K of the target.
      penalty: ``"l2"`` (LRSC-L2) or ``"l1"``.
      seed, verbose: as elsewhere.
      **overrides: fields of :class:`jaxsc.presets.LRSCPreset` (``meta``, ``distill``, ``nce`` switch the
        paper's modules).

    Attributes (after ``fit``): ``labels_``, ``coef_``, ``params_``, ``meta_history_``, ``seconds_``,
    ``diagnostics_`` (label-free RMS of Z and of C off its diagonal, the fraction of inactive latent
    coordinates at the end and after meta-learning, the inner step size: :class:`jaxsc.LRSCResult`).
    """

    def __init__(self, n_clusters: int, *, penalty: str = "l2", seed: int = 0, verbose: bool = False, **overrides):
        self.n_clusters, self.penalty, self.seed, self.verbose, self.overrides = \
            n_clusters, penalty, seed, verbose, overrides

    def fit(self, x, y=None, *, external) -> "LRSC":
        """Fit on target samples ``x`` with ``external=(x_external, y_external)`` labelled external data."""
        x_ext, y_ext = external
        preset = LRSCPreset.for_penalty(self.penalty).replace(**self.overrides)
        result = fit_lrsc(x, self.n_clusters, x_ext, y_ext, preset, seed=self.seed, verbose=self.verbose)
        self.labels_, self.coef_, self.params_ = result.labels, result.coef, result.params
        self.meta_history_, self.seconds_, self.diagnostics_ = result.meta_history, result.seconds, result.diagnostics
        return self

    def fit_predict(self, x, y=None, *, external) -> np.ndarray:
        """``fit(x, external=external).labels_``."""
        return self.fit(x, external=external).labels_


class DSC(SubspaceClustering):
    """DSC-Net (Ji et al. 2017); ``method="dsc-l1"`` for the L1 penalty. See :class:`SubspaceClustering`."""

    default_method = "dsc-l2"


class RGRL(SubspaceClustering):
    """RGRL (relation-guided representation learning); methods ``rgrl``, ``rgrl-l1``, ``rgrl-sc``.
    See :class:`SubspaceClustering`."""

    default_method = "rgrl"


class UDLL(SubspaceClustering):
    """UDLL (unsupervised deep local learning): DSC-Net plus a locality loss on the adaptive-neighbour graph of
    the pretrained features. See :class:`SubspaceClustering`."""

    default_method = "udll"


class PSSC(SubspaceClustering):
    """PSSC (pseudo-supervised deep subspace clustering); methods ``pssc``, ``pssc-l``.
    See :class:`SubspaceClustering`."""

    default_method = "pssc"
