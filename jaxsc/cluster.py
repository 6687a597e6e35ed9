"""The jitted cluster stage: threshold, affinity, spectral embedding, k-means, discretisation; and its
large-n path (randomized SVD, sparse top-k affinity, Chebyshev-filtered subspace iteration)."""
from jaxsc._src.cluster.affinity import (nonnegative_power, simple_affinity, svd_affinity, svd_embedding,
                                        svd_operator, svd_rank)
from jaxsc._src.cluster.eigen import (EIGENSOLVERS, MAX_ANGLE, EigenResult, chebyshev_subspace,
                                     gershgorin_lower_bound, lobpcg, top_eigenpairs)
from jaxsc._src.cluster.kmeans import KMeansResult, kmeans, kmeans_plus_plus
from jaxsc._src.cluster.large import SparseEmbedding, large_svd_affinity, sparse_spectral_embedding, topk_affinity
from jaxsc._src.cluster.pipeline import (LARGE_N, ClusterResult, PostConfig, cluster_coefficients,
                                        compile_cluster_stage)
from jaxsc._src.cluster.spectral import assign_labels, discretize, spectral_clustering, spectral_embedding
from jaxsc._src.cluster.subspace import (SUBSPACE_METHODS, lanczos_extremes, randomized_top_subspace,
                                         top_singular_subspace)
from jaxsc._src.cluster.threshold import threshold_coefficients

__all__ = ["EIGENSOLVERS", "LARGE_N", "MAX_ANGLE", "SUBSPACE_METHODS", "ClusterResult", "EigenResult", "KMeansResult",
           "PostConfig", "SparseEmbedding", "assign_labels", "chebyshev_subspace", "cluster_coefficients",
           "compile_cluster_stage", "discretize", "gershgorin_lower_bound", "kmeans", "kmeans_plus_plus",
           "lanczos_extremes", "large_svd_affinity", "lobpcg", "nonnegative_power", "randomized_top_subspace",
           "simple_affinity", "sparse_spectral_embedding", "spectral_clustering", "spectral_embedding",
           "svd_affinity", "svd_embedding", "svd_operator", "svd_rank", "threshold_coefficients", "top_eigenpairs",
           "top_singular_subspace", "topk_affinity"]
