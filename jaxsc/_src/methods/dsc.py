"""DSC-Net (Ji et al., 2017): conv autoencoder + self-expression layer, learned end to end.

L = w_rec ||X - X_hat||^2 + w_reg R(C) + w_se ||Z - C Z||^2,  R = ||C||_F^2 (DSC-L2) or ||C||_1 (DSC-L1),
with Z = enc(X) flattened per sample and X_hat = dec(C Z).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxsc._src.losses.coefficient import PENALTIES, coefficient_penalty
from jaxsc._src.losses.reconstruction import reconstruction_loss
from jaxsc._src.losses.self_expression import self_expression_loss
from jaxsc._src.models.autoencoders import flatten
from jaxsc._src.models.self_expression import init_coefficients, self_express

_MATMUL_DTYPES = {None: None, "float32": None, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class ReconstructionObjective:
    """Autoencoder pretraining: L = ||X - dec(enc(X))||^2 with Adam(``learning_rate``)."""

    model: nn.Module
    learning_rate: float = 1e-3

    def loss(self, params, x):
        rec = reconstruction_loss(x, self.model.apply({"params": params}, x))
        return rec, {"rec": rec}

    def optimizer(self):
        return optax.adam(self.learning_rate)

    def monitored(self, params):
        return None


def dsc_forward(model: nn.Module, params, x, *, zero_diagonal=False, matmul_dtype=None):
    """``(z, zc, x_hat)``: latent rows Z, self-expressed rows C Z, and the decoded X_hat = dec(C Z)."""
    variables = {"params": params["autoencoder"]}
    z_maps = model.apply(variables, x, method="encode")
    z = flatten(z_maps)
    zc = self_express(params["coef"], z, zero_diagonal=zero_diagonal,
                      matmul_dtype=_MATMUL_DTYPES[matmul_dtype])
    x_hat = model.apply(variables, zc.reshape(z_maps.shape), method="decode")
    return z, zc, x_hat


@dataclasses.dataclass(frozen=True)
class DSCObjective:
    """The DSC-Net fine-tuning objective over ``{'autoencoder': ..., 'coef': C}``.

    Attributes:
      model: the autoencoder (``encode``/``decode`` methods).
      w_rec, w_reg, w_se: weights of reconstruction, coefficient penalty and self-expression.
      penalty: ``"l2"`` or ``"l1"``.
      zero_diagonal: mask diag(C) in the forward pass.
      lr_net, lr_coef: Adam learning rates of the network and of C (``optax.multi_transform``).
      matmul_dtype: ``None`` or ``"bfloat16"`` for the C Z product.
    """

    model: nn.Module
    w_rec: float = 1.0
    w_reg: float = 1.0
    w_se: float = 1.0
    penalty: str = "l2"
    zero_diagonal: bool = False
    lr_net: float = 1e-3
    lr_coef: float = 1e-3
    matmul_dtype: str | None = None

    def __post_init__(self):
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; choose one of {sorted(PENALTIES)}")
        if self.matmul_dtype not in _MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be one of {list(_MATMUL_DTYPES)}, got {self.matmul_dtype!r}")

    def loss(self, params, x):
        z, zc, x_hat = dsc_forward(self.model, params, x, zero_diagonal=self.zero_diagonal,
                                   matmul_dtype=self.matmul_dtype)
        terms = {"rec": reconstruction_loss(x, x_hat), "reg": coefficient_penalty(params["coef"], self.penalty),
                 "se": self_expression_loss(z, zc)}
        return self.w_rec * terms["rec"] + self.w_reg * terms["reg"] + self.w_se * terms["se"], terms

    def optimizer(self):
        labels = {"autoencoder": "net", "coef": "coef"}
        return optax.multi_transform({"net": optax.adam(self.lr_net), "coef": optax.adam(self.lr_coef)},
                                     lambda params: {k: jax.tree.map(lambda _: labels[k], v)
                                                     for k, v in params.items()})

    def monitored(self, params):
        return params["coef"]


def init_dsc_params(autoencoder_params: Any, n: int, coef_init: float) -> dict:
    """``{'autoencoder': autoencoder_params, 'coef': coef_init * ones(n, n)}``."""
    return {"autoencoder": autoencoder_params, "coef": init_coefficients(n, coef_init)}
