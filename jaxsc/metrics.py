"""Clustering metrics: ACC (Hungarian), NMI, ARI, purity, precision."""
from jaxsc._src.metrics import METRICS, accuracy, ari, contingency, evaluate, nmi, precision, purity

__all__ = ["METRICS", "accuracy", "ari", "contingency", "evaluate", "nmi", "precision", "purity"]
