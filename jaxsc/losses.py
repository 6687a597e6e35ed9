"""Pure loss terms (each docstring gives the equation)."""
from jaxsc._src.losses.assignment import (KL_DIRECTIONS, SAI_TARGETS, SAI_VARIANTS, frequency_normalized,
                                          hinge_closeness, sai_assignments, sai_closeness, sai_loss,
                                          student_closeness)
from jaxsc._src.losses.coefficient import coefficient_penalty, l1_penalty, l2_penalty
from jaxsc._src.losses.distances import (DISTANCES, cityblock_distance, cosine_distance, correlation_distance,
                                         euclidean_distance, unit_rows)
from jaxsc._src.losses.distillation import (DISTILLATION_FORMS, NCE_REDUCTIONS, distillation_loss, heat_kernel_weights,
                                           infonce_loss, normalized_locality_loss, weighted_locality_loss)
from jaxsc._src.losses.graph import (coefficient_similarity, laplacian_reconstruction_loss,
                                    normalized_adjacency_matmul)
from jaxsc._src.losses.locality import adaptive_neighbors, locality_loss
from jaxsc._src.losses.pseudo_supervision import (PSEUDO_GRAPH_LOSSES, pseudo_graph_contrastive, pseudo_graph_hinge,
                                                  pseudo_label_loss)
from jaxsc._src.losses.reconstruction import reconstruction_loss
from jaxsc._src.losses.self_expression import self_expression_loss

__all__ = ["DISTANCES", "DISTILLATION_FORMS", "KL_DIRECTIONS", "NCE_REDUCTIONS", "PSEUDO_GRAPH_LOSSES", "SAI_TARGETS",
           "SAI_VARIANTS", "adaptive_neighbors", "cityblock_distance", "coefficient_penalty",
           "coefficient_similarity", "correlation_distance", "cosine_distance", "distillation_loss",
           "euclidean_distance", "frequency_normalized", "heat_kernel_weights", "hinge_closeness", "infonce_loss",
           "l1_penalty", "l2_penalty", "laplacian_reconstruction_loss", "locality_loss",
           "normalized_adjacency_matmul", "normalized_locality_loss", "pseudo_graph_contrastive",
           "pseudo_graph_hinge", "pseudo_label_loss", "reconstruction_loss", "sai_assignments", "sai_closeness",
           "sai_loss", "self_expression_loss", "student_closeness", "unit_rows", "weighted_locality_loss"]
