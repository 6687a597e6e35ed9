"""scikit-learn style estimator over the functional core."""
from __future__ import annotations

import numpy as np

from jaxsc._src import api
from jaxsc._src.methods.presets import get_preset


class DSC:
    """Deep Subspace Clustering Network (DSC-Net) as an estimator.

    Example::

        model = jaxsc.DSC(n_clusters=20, preset="coil20").fit(images)
        model.labels_, model.coef_, model.affinity_

    Args:
      n_clusters: number of clusters K (2 <= K <= n).
      preset: a name of :data:`jaxsc.presets.PRESETS`, or ``None`` to derive one from the image size.
      penalty: ``"l2"`` (DSC-L2) or ``"l1"`` (DSC-L1).
      seed: seed of initialisation, mini-batch order and the cluster stage.
      autoencoder_params: start fine-tuning from these (e.g. :func:`jaxsc.models.load_reference_weights`)
        instead of pretraining.
      verbose: print progress lines.
      **overrides: fields of :class:`jaxsc.presets.DSCPreset` to change (e.g. ``finetune_steps=10``).

    Attributes (after ``fit``): ``labels_``, ``coef_`` (C), ``affinity_``, ``params_``, ``seconds_``.
    """

    def __init__(self, n_clusters: int, preset: str | None = None, *, penalty: str = "l2", seed: int = 0,
                 autoencoder_params=None, matmul_dtype: str | None = None, verbose: bool = False, **overrides):
        self.n_clusters, self.preset, self.penalty, self.seed = n_clusters, preset, penalty, seed
        self.autoencoder_params, self.matmul_dtype, self.verbose = autoencoder_params, matmul_dtype, verbose
        self.overrides = overrides

    def fit(self, x, y=None) -> "DSC":
        """Fit on images ``(n, H, W)`` or ``(n, H, W, C)`` in [0, 1]; ``y`` is ignored."""
        x = api.check_images(x)
        settings = get_preset(self.preset, x.shape[1:]).replace(**self.overrides)
        result = api.run(x, self.n_clusters, settings, seed=self.seed, penalty=self.penalty,
                         autoencoder_params=self.autoencoder_params, matmul_dtype=self.matmul_dtype,
                         verbose=self.verbose)
        self.labels_, self.coef_, self.affinity_ = result.labels, result.coef, result.affinity
        self.params_, self.seconds_ = result.params, result.seconds
        return self

    def fit_predict(self, x, y=None) -> np.ndarray:
        return self.fit(x).labels_
