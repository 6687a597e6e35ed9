"""Autoencoders of the DSC family (flax linen; use them through pure ``apply``).

Conv autoencoder (DSC-Net): stride-2 convolutions with TensorFlow "SAME" padding (output size
``ceil(in / 2)``, padding ``max((out - 1) * 2 + k - in, 0)`` split with the extra pixel after), ReLU after
every layer including the decoder output, and transposed convolutions that mirror the encoder. Each
transposed convolution is the exact linear transpose of the "SAME" convolution of the matching encoder layer
shape (what ``tf.nn.conv2d_transpose`` computes), so odd sizes such as 48x42 -> 24x21 -> 12x11 -> 6x6 are
restored exactly. Kernels are Xavier-uniform, biases zero.

MLP autoencoder (DEC/IDEC layout): D-500-500-2000-k encoder, mirrored decoder, ReLU except on the embedding
and the output.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsc._src.models.conv import SameConv, same_conv, same_conv_transpose


def conv_shapes(image_hw: tuple[int, int], n_layers: int) -> list[tuple[int, int]]:
    """Spatial sizes before each stride-2 "SAME" layer and after the last: ``[in, ceil(in/2), ...]``."""
    shapes = [tuple(image_hw)]
    for _ in range(n_layers):
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def encoder_text(kernels: Sequence[int], channels: Sequence[int]) -> str:
    """A conv encoder layer by layer, kernel x kernel @ channels: ``5x5@5, 3x3@3, 3x3@3``."""
    return ", ".join(f"{k}x{k}@{c}" for k, c in zip(kernels, channels))


class ConvAutoencoder(nn.Module):
    """DSC-Net convolutional autoencoder.

    Attributes:
      image_shape: ``(H, W, C)`` of the inputs.
      kernels: kernel size of each encoder layer.
      channels: output channels of each encoder layer.
    """

    image_shape: tuple[int, int, int]
    kernels: Sequence[int]
    channels: Sequence[int]

    def setup(self):
        if len(self.kernels) != len(self.channels) or not self.kernels:
            raise ValueError(f"kernels {self.kernels} and channels {self.channels} must be non-empty "
                             "and of equal length")
        init = nn.initializers.xavier_uniform()
        ins = (self.image_shape[2], *self.channels[:-1])
        self.enc_kernels = [self.param(f"enc{i}_kernel", init, (k, k, cin, cout), jnp.float32)
                            for i, (k, cin, cout) in enumerate(zip(self.kernels, ins, self.channels))]
        self.enc_biases = [self.param(f"enc{i}_bias", nn.initializers.zeros, (c,), jnp.float32)
                           for i, c in enumerate(self.channels)]
        # Decoder layer i undoes encoder layer L-1-i; its kernel has the forward conv's HWIO layout.
        self.dec_kernels = [self.param(f"dec{i}_kernel", init, (k, k, cin, cout), jnp.float32)
                            for i, (k, cin, cout) in enumerate(reversed(list(zip(self.kernels, ins,
                                                                                   self.channels))))]
        self.dec_biases = [self.param(f"dec{i}_bias", nn.initializers.zeros, (cin,), jnp.float32)
                           for i, cin in enumerate(reversed(ins))]

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(h, w, c)`` of one encoded sample."""
        return (*conv_shapes(self.image_shape[:2], len(self.kernels))[-1], self.channels[-1])

    def encode(self, x: jax.Array) -> jax.Array:
        """``(n, H, W, C)`` images -> ``(n, h, w, c)`` latent maps."""
        for kernel, bias in zip(self.enc_kernels, self.enc_biases):
            x = nn.relu(same_conv(x, kernel) + bias)
        return x

    def decode(self, z: jax.Array) -> jax.Array:
        """``(n, h, w, c)`` latent maps -> ``(n, H, W, C)`` reconstructions (ReLU output, as in DSC-Net)."""
        sizes = conv_shapes(self.image_shape[:2], len(self.kernels))[:-1][::-1]
        for kernel, bias, size in zip(self.dec_kernels, self.dec_biases, sizes):
            z = nn.relu(same_conv_transpose(z, kernel, size) + bias)
        return z

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decode(self.encode(x))


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder D-h1-...-k with the mirrored decoder (default D-500-500-2000-k)."""

    input_dim: int
    latent_dim: int
    hidden: Sequence[int] = (500, 500, 2000)

    def setup(self):
        init = nn.initializers.xavier_uniform()
        self.encoder_layers = [nn.Dense(h, kernel_init=init) for h in (*self.hidden, self.latent_dim)]
        self.decoder_layers = [nn.Dense(h, kernel_init=init) for h in (*self.hidden[::-1], self.input_dim)]

    @property
    def latent_shape(self) -> tuple[int]:
        return (self.latent_dim,)

    def encode(self, x: jax.Array) -> jax.Array:
        """``(n, D)`` -> ``(n, latent_dim)``: ReLU hidden layers, linear embedding."""
        for layer in self.encoder_layers[:-1]:
            x = nn.relu(layer(x))
        return self.encoder_layers[-1](x)

    def decode(self, z: jax.Array) -> jax.Array:
        """``(n, latent_dim)`` -> ``(n, D)``: ReLU hidden layers, linear output."""
        for layer in self.decoder_layers[:-1]:
            z = nn.relu(layer(z))
        return self.decoder_layers[-1](z)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decode(self.encode(x))


def flatten(z: jax.Array) -> jax.Array:
    """``(n, ...)`` -> ``(n, d)``."""
    return z.reshape(z.shape[0], -1)


class PoolConvAutoencoder(nn.Module):
    """SAI's CNN autoencoder: conv(64, 5)-pool(2)-conv(32, 5)-pool(2)-FC(1024)-FC(latent) and the mirror
    decoder (nearest-neighbour upsampling in place of unpooling); ReLU everywhere except a sigmoid on the
    embedding and on the output. Images need sides divisible by 4.

    ``output_bias``: the initial bias of the output layer (a logit). With 0 the first output is 0.5 everywhere;
    on MNIST (mean intensity 0.12) the first Adam steps then pushed every sample's code the same way into the
    sigmoid's flat ends (codes constant across samples within 25 steps at rate 1e-3 or 1e-4, the decoder left
    outputting the mean image), so :func:`jaxsc.pretrain_dae` sets it to the logit of the data's mean intensity
    (label-free)."""

    image_shape: tuple[int, int, int]
    latent_dim: int = 10
    channels: tuple[int, int] = (64, 32)
    kernel: int = 5
    hidden: int = 1024
    output_bias: float = 0.0

    def setup(self):
        h, w, c = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"PoolConvAutoencoder needs image sides divisible by 4, got {self.image_shape}")
        init = nn.initializers.xavier_uniform()
        self.enc_convs = [SameConv(ch, self.kernel) for ch in self.channels]
        self.enc_dense = [nn.Dense(self.hidden, kernel_init=init), nn.Dense(self.latent_dim, kernel_init=init)]
        self.dec_dense = [nn.Dense(self.hidden, kernel_init=init),
                          nn.Dense((h // 4) * (w // 4) * self.channels[-1], kernel_init=init)]
        self.dec_convs = [SameConv(self.channels[0], self.kernel),
                          SameConv(c, self.kernel, bias_init=nn.initializers.constant(self.output_bias))]

    @property
    def latent_shape(self) -> tuple[int]:
        return (self.latent_dim,)

    def encode(self, x: jax.Array) -> jax.Array:
        """``(n, H, W, C)`` -> ``(n, latent_dim)`` in (0, 1) (sigmoid embedding)."""
        for conv in self.enc_convs:
            x = nn.max_pool(nn.relu(conv(x)), (2, 2), strides=(2, 2))
        x = nn.relu(self.enc_dense[0](x.reshape(x.shape[0], -1)))
        return nn.sigmoid(self.enc_dense[1](x))

    def decode(self, z: jax.Array) -> jax.Array:
        """``(n, latent_dim)`` -> ``(n, H, W, C)`` in (0, 1) (sigmoid output)."""
        h, w, _ = self.image_shape
        z = nn.relu(self.dec_dense[1](nn.relu(self.dec_dense[0](z))))
        z = z.reshape(z.shape[0], h // 4, w // 4, self.channels[-1])
        z = nn.relu(self.dec_convs[0](jnp.repeat(jnp.repeat(z, 2, axis=1), 2, axis=2)))
        return nn.sigmoid(self.dec_convs[1](jnp.repeat(jnp.repeat(z, 2, axis=1), 2, axis=2)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decode(self.encode(x))
