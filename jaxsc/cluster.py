"""The jitted cluster stage: threshold, affinity, spectral embedding, k-means, discretisation."""
from jaxsc._src.cluster.affinity import simple_affinity, svd_affinity, top_singular_subspace
from jaxsc._src.cluster.kmeans import KMeansResult, kmeans, kmeans_plus_plus
from jaxsc._src.cluster.pipeline import ClusterResult, PostConfig, cluster_coefficients
from jaxsc._src.cluster.spectral import discretize, spectral_clustering, spectral_embedding
from jaxsc._src.cluster.threshold import threshold_coefficients

__all__ = ["ClusterResult", "KMeansResult", "PostConfig", "cluster_coefficients", "discretize", "kmeans",
           "kmeans_plus_plus", "simple_affinity", "spectral_clustering", "spectral_embedding", "svd_affinity",
           "threshold_coefficients", "top_singular_subspace"]
