"""Pure loss terms (each docstring gives the equation)."""
from jaxsc._src.losses.coefficient import coefficient_penalty, l1_penalty, l2_penalty
from jaxsc._src.losses.reconstruction import reconstruction_loss
from jaxsc._src.losses.self_expression import self_expression_loss

__all__ = ["coefficient_penalty", "l1_penalty", "l2_penalty", "reconstruction_loss", "self_expression_loss"]
