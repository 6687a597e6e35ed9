"""LRSC's deeper teacher: a supervised classifier on the external data whose penultimate layer gives features."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxsc._src.models.conv import SameConv


class TeacherNet(nn.Module):
    """For images: 3x3 convs (``channels``, stride 2 every second layer, ReLU), global average pooling, a
    ``feature_dim`` dense layer; for vectors: dense layers (``hidden``). Then a linear classifier.
    ``features`` returns the penultimate layer (the representation distilled into the student)."""

    n_classes: int
    channels: Sequence[int] = (32, 32, 64, 64, 128, 128)
    hidden: Sequence[int] = (512, 512, 256)
    feature_dim: int = 128

    def setup(self):
        init = nn.initializers.xavier_uniform()
        self.convs = [SameConv(c, 3, stride=2 if i % 2 else 1) for i, c in enumerate(self.channels)]
        self.dense = [nn.Dense(h, kernel_init=init) for h in self.hidden]
        self.feature = nn.Dense(self.feature_dim, kernel_init=init)
        self.head = nn.Dense(self.n_classes, kernel_init=init)

    def features(self, x: jax.Array) -> jax.Array:
        """The penultimate layer: the features distilled into the student."""
        if x.ndim == 4:
            for conv in self.convs:
                x = nn.relu(conv(x))
            x = jnp.mean(x, axis=(1, 2))
        else:
            for layer in self.dense:
                x = nn.relu(layer(x))
        return nn.relu(self.feature(x))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))


@dataclasses.dataclass(frozen=True)
class ClassificationObjective:
    """Mean softmax cross-entropy of ``model`` on ``{'x', 'y'}`` batches, Adam(``learning_rate``)."""

    model: nn.Module
    learning_rate: float = 1e-3

    def loss(self, params, batch):
        """``(mean cross-entropy, terms)`` on a ``{'x', 'y'}`` batch."""
        logits = self.model.apply({"params": params}, batch["x"])
        value = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]))
        return value, {"ce": value}

    def optimizer(self):
        """Adam at ``learning_rate``."""
        return optax.adam(self.learning_rate)

    def monitored(self, params):
        """Nothing: no early stop."""
        return None
