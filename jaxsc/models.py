"""Models: autoencoders, the self-expression layer, DSC-Net reference weights."""
from jaxsc._src.models.autoencoders import ConvAutoencoder, MLPAutoencoder, PoolConvAutoencoder, conv_shapes, flatten
from jaxsc._src.models.conv import SameConv, same_conv, same_conv_transpose
from jaxsc._src.models.classifier import classifier_probs, init_classifier
from jaxsc._src.models.reference_weights import REFERENCE_WEIGHTS, convert_state_dict, load_reference_weights
from jaxsc._src.models.self_expression import (init_coefficients, ridge_coefficients, self_express, spd_inverse,
                                              without_diagonal)
from jaxsc._src.models.teacher import ClassificationObjective, TeacherNet
from jaxsc._src.models.torch_pickle import load_legacy_torch

__all__ = ["ClassificationObjective", "ConvAutoencoder", "MLPAutoencoder", "PoolConvAutoencoder",
           "REFERENCE_WEIGHTS", "SameConv", "TeacherNet", "classifier_probs", "conv_shapes", "convert_state_dict",
           "flatten", "init_classifier", "init_coefficients", "load_legacy_torch", "load_reference_weights",
           "ridge_coefficients", "same_conv", "same_conv_transpose", "self_express", "spd_inverse",
           "without_diagonal"]
