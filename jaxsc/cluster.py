"""The jitted cluster stage: threshold, affinity, spectral embedding, k-means, discretisation; and its
large-n path (randomized SVD, sparse top-k affinity, LOBPCG)."""
from jaxsc._src.cluster.affinity import simple_affinity, svd_affinity, top_singular_subspace
from jaxsc._src.cluster.eigen import EIGENSOLVERS, top_eigenpairs
from jaxsc._src.cluster.kmeans import KMeansResult, kmeans, kmeans_plus_plus
from jaxsc._src.cluster.large import (large_svd_affinity, randomized_top_subspace, sparse_spectral_embedding,
                                      topk_affinity)
from jaxsc._src.cluster.pipeline import LARGE_N, ClusterResult, PostConfig, cluster_coefficients
from jaxsc._src.cluster.spectral import assign_labels, discretize, spectral_clustering, spectral_embedding
from jaxsc._src.cluster.threshold import threshold_coefficients

__all__ = ["EIGENSOLVERS", "LARGE_N", "ClusterResult", "KMeansResult", "PostConfig", "assign_labels", "cluster_coefficients",
           "discretize", "kmeans", "kmeans_plus_plus", "large_svd_affinity", "randomized_top_subspace",
           "simple_affinity", "sparse_spectral_embedding", "spectral_clustering", "spectral_embedding",
           "svd_affinity", "threshold_coefficients", "top_eigenpairs", "top_singular_subspace", "topk_affinity"]
