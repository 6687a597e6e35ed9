"""Convolutions with TensorFlow "SAME" padding, computed on the CPU as matrix products where that is faster.

Let P be the k x k patches of the padded input at the output positions, an (n h w, k k C) matrix. Then

    forward          Y = P K        (K reshaped to (k k C, C'))
    kernel gradient  dL/dK = P^T dY

XLA's CPU backend differentiates a convolution with respect to its kernel by another convolution in which the
batch is the contracted dimension and the window spans the whole feature map; that convolution took 60-70% of
a DSC fine-tune step at the EYaleB shape and of an LRSC teacher step (profiled on 2 cores), so on the CPU the
kernel gradient is the product above when P has at most ``PATCH_GRADIENT_MAX_ELEMENTS`` entries (up to 40 M
entries: 1.0-6.3x faster than XLA's on 2 cores), else XLA's (SAI's CNN at batch 256: P of 80 M and 321 M
entries, 1.3 GB for the latter, where XLA's was 1.5x and 2.7x faster). The forward convolution is the product
when P has at most ``PATCH_MAX_ELEMENTS`` entries (DSC-Net's ORL and COIL20 layers, 0.2-3.3 M entries:
1.8-2.5x faster than XLA's convolution on 2 cores; past 4.9 M entries, RGRL's MNIST and DSC-Net's EYaleB
layers, 1.2-6x slower), else XLA's. Transposed convolutions and input gradients are XLA's: the product form
with a fold was faster alone but slowed the whole ORL step (``benchmarks/speed.py --sections conv``). Other
backends (cuDNN) use their own convolutions throughout.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
PATCH_MAX_ELEMENTS = 2 ** 22  # the largest patch matrix (entries) for which the CPU's forward is P K
PATCH_GRADIENT_MAX_ELEMENTS = 2 ** 26  # the largest for which the CPU's kernel gradient is P^T dY


def _same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding ``(before, after)``: output ceil(size / stride), padding
    max((out - 1) stride + k - size, 0) with the extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _window_padding(hw: tuple[int, int], k: int, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` taking an ``hw`` map to the extent its windows read,
    ((out - 1) stride + k) per axis; negative where the windows never reach the last pixels."""
    pads = []
    for size in hw:
        before = _same_padding(size, k, stride)[0]
        pads.append((before, (-(-size // stride) - 1) * stride + k - size - before))
    return pads[0], pads[1]


def _patch_entries(x_shape, k: int, stride: int) -> int:
    n, h, w, cin = x_shape
    return n * -(-h // stride) * -(-w // stride) * k * k * cin


def uses_patch_forward(x_shape, k: int, stride: int) -> bool:
    """Whether the forward convolution of an ``x_shape`` (n, h, w, C) map is the product P K."""
    return jax.default_backend() == "cpu" and _patch_entries(x_shape, k, stride) <= PATCH_MAX_ELEMENTS


def uses_patch_gradient(x_shape, k: int, stride: int) -> bool:
    """Whether the kernel gradient of the convolution of an ``x_shape`` (n, h, w, C) map is the product P^T dY."""
    return jax.default_backend() == "cpu" and _patch_entries(x_shape, k, stride) <= PATCH_GRADIENT_MAX_ELEMENTS


def _patches(x: jax.Array, k: int, stride: int) -> jax.Array:
    """P of the module docstring, shaped (n, out_h, out_w, k k C), columns ordered (row, column, channel)."""
    n, h, w, _ = x.shape
    oh, ow = -(-h // stride), -(-w // stride)
    (top, bottom), (left, right) = _window_padding((h, w), k, stride)
    x = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))
    return jnp.concatenate([x[:, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride]
                            for a in range(k) for b in range(k)], axis=-1)


def _lax_conv(x, kernel, stride):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=_DIMENSIONS)


def _forward(x, kernel, stride):
    if uses_patch_forward(x.shape, kernel.shape[0], stride):
        return _patches(x, kernel.shape[0], stride) @ kernel.reshape(-1, kernel.shape[-1])
    return _lax_conv(x, kernel, stride)


def _transpose(y, kernel, out_hw, stride=2):
    x_shape = jax.ShapeDtypeStruct((y.shape[0], *out_hw, kernel.shape[2]), y.dtype)
    (x,) = jax.linear_transpose(lambda x: _lax_conv(x, kernel, stride), x_shape)(y)
    return x


def _patch_kernel_gradient(x: jax.Array, dy: jax.Array, k: int, stride: int) -> jax.Array:
    """d<dy, same_conv(x, K)>/dK for a k x k kernel: P^T dy (module docstring)."""
    cin, cout = x.shape[-1], dy.shape[-1]
    return (_patches(x, k, stride).reshape(-1, k * k * cin).T @ dy.reshape(-1, cout)).reshape(k, k, cin, cout)


def _kernel_gradient(x: jax.Array, dy: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """d<dy, same_conv(x, K)>/dK at ``kernel``: :func:`_patch_kernel_gradient` where :func:`uses_patch_gradient`,
    else autodiff."""
    if uses_patch_gradient(x.shape, kernel.shape[0], stride):
        return _patch_kernel_gradient(x, dy, kernel.shape[0], stride).astype(kernel.dtype)
    return jax.vjp(lambda k: _forward(x, k, stride), kernel)[1](dy)[0]


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def same_conv(x: jax.Array, kernel: jax.Array, stride: int = 2) -> jax.Array:
    """Convolution of NHWC ``x`` with the HWIO ``kernel``, ``stride`` 1 or 2, TensorFlow "SAME" padding
    (output size ceil(in / stride), the odd padding pixel after). Kernel gradient: module docstring."""
    return _forward(x, kernel, stride)


def _same_conv_fwd(x, kernel, stride):
    return _forward(x, kernel, stride), (x, kernel)


def _same_conv_bwd(stride, residuals, dy):
    x, kernel = residuals
    dx = _transpose(dy, kernel, x.shape[1:3], stride)
    return dx, _kernel_gradient(x, dy, kernel, stride)


same_conv.defvjp(_same_conv_fwd, _same_conv_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def same_conv_transpose(y: jax.Array, kernel: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """Transpose of the stride-2 :func:`same_conv` mapping ``y`` back to spatial size ``out_hw``.

    ``kernel`` is the HWIO kernel of the forward convolution (I = channels produced here, O = channels of
    ``y``), the layout of TensorFlow's ``conv2d_transpose`` filters. Gradients: with g the output gradient,
    d/dy = same_conv(g, K) and d/dK is the kernel gradient of same_conv at input g and output gradient y,
    since <g, T_K y> = <same_conv(g, K), y>.
    """
    return _transpose(y, kernel, out_hw)


def _same_conv_transpose_fwd(y, kernel, out_hw):
    return _transpose(y, kernel, out_hw), (y, kernel)


def _same_conv_transpose_bwd(out_hw, residuals, g):
    y, kernel = residuals
    return _forward(g, kernel, 2), _kernel_gradient(g, y, kernel, 2)


same_conv_transpose.defvjp(_same_conv_transpose_fwd, _same_conv_transpose_bwd)


class SameConv(nn.Module):
    """``nn.Conv(features, (k, k), strides=stride, padding="SAME")`` (Xavier-uniform kernel, bias from
    ``bias_init``, zeros by default) computed by :func:`same_conv`; parameters ``kernel`` (HWIO) and ``bias``."""

    features: int
    kernel_size: int
    stride: int = 1
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.xavier_uniform(),
                            (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        return same_conv(x, kernel, self.stride) + bias
