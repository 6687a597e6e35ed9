"""Pure loss terms (each docstring gives the equation)."""
from jaxsc._src.losses.coefficient import coefficient_penalty, l1_penalty, l2_penalty
from jaxsc._src.losses.graph import (coefficient_similarity, laplacian_reconstruction_loss,
                                    normalized_adjacency_matmul)
from jaxsc._src.losses.locality import adaptive_neighbors, locality_loss
from jaxsc._src.losses.pseudo_supervision import (PSEUDO_GRAPH_LOSSES, pseudo_graph_contrastive, pseudo_graph_hinge,
                                                  pseudo_label_loss)
from jaxsc._src.losses.reconstruction import reconstruction_loss
from jaxsc._src.losses.self_expression import self_expression_loss

__all__ = ["PSEUDO_GRAPH_LOSSES", "adaptive_neighbors", "coefficient_penalty", "coefficient_similarity", "l1_penalty", "l2_penalty",
           "laplacian_reconstruction_loss", "locality_loss", "normalized_adjacency_matmul", "pseudo_graph_contrastive",
           "pseudo_graph_hinge", "pseudo_label_loss", "reconstruction_loss", "self_expression_loss"]
