"""Figures (needs matplotlib: ``pip install 'jaxsc[plot]'``)."""
from jaxsc._src.plot import (plot_affinity, plot_confusion, plot_embedding, plot_training_curve, save_run_figures,
                             sort_by_label)

__all__ = ["plot_affinity", "plot_confusion", "plot_embedding", "plot_training_curve", "save_run_figures",
           "sort_by_label"]
