"""Convolutions with TensorFlow "SAME" padding whose kernel gradients are matrix products.

XLA's CPU backend differentiates a convolution with respect to its kernel by another convolution in which the
batch is the contracted dimension and the window spans the whole feature map; that convolution took 60-70% of
a DSC fine-tune step at the EYaleB shape and of an LRSC teacher step (profiled on 2 cores). Here the kernel
gradient is written out as one matrix product,

    dL/dK = P^T dY,  P = the k x k patches of the padded input at the output positions (n h w, k k C),

and everything else (the forward convolution, the input gradient) stays XLA's. P is a transient of k^2 times
the input's size, so this is done on the CPU only; other backends (cuDNN) differentiate the convolution
themselves.
"""
from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding ``(before, after)``: output ceil(size / stride), padding
    max((out - 1) stride + k - size, 0) with the extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _lax_same_conv(x, kernel, stride):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=_DIMENSIONS)


def _lax_same_conv_transpose(y, kernel, out_hw, stride=2):
    x_shape = jax.ShapeDtypeStruct((y.shape[0], *out_hw, kernel.shape[2]), y.dtype)
    (x,) = jax.linear_transpose(lambda x: _lax_same_conv(x, kernel, stride), x_shape)(y)
    return x


def _patch_kernel_gradient(x: jax.Array, dy: jax.Array, k: int, stride: int) -> jax.Array:
    """d<dy, same_conv(x, K)>/dK for a k x k kernel: the patches matrix P (module docstring) times dy."""
    n, oh, ow, cout = dy.shape
    h, w, cin = x.shape[1:]
    (top, _), (left, _) = _same_padding(h, k, stride), _same_padding(w, k, stride)
    rows, cols = (oh - 1) * stride + k, (ow - 1) * stride + k  # the padded extent the windows read
    x = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (top, rows - h - top, 0), (left, cols - w - left, 0),
                                                (0, 0, 0)))
    patches = jnp.concatenate([x[:, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride]
                               for a in range(k) for b in range(k)], axis=-1)
    return (patches.reshape(-1, k * k * cin).T @ dy.reshape(-1, cout)).reshape(k, k, cin, cout)


def _kernel_gradient(x: jax.Array, dy: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """d<dy, same_conv(x, K)>/dK at ``kernel``: :func:`_patch_kernel_gradient` on the CPU, else autodiff."""
    if jax.default_backend() == "cpu":
        return _patch_kernel_gradient(x, dy, kernel.shape[0], stride).astype(kernel.dtype)
    return jax.vjp(lambda k: _lax_same_conv(x, k, stride), kernel)[1](dy)[0]


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def same_conv(x: jax.Array, kernel: jax.Array, stride: int = 2) -> jax.Array:
    """Convolution of NHWC ``x`` with the HWIO ``kernel``, ``stride`` 1 or 2, TensorFlow "SAME" padding
    (output size ceil(in / stride), the odd padding pixel after). Kernel gradient: module docstring."""
    return _lax_same_conv(x, kernel, stride)


def _same_conv_fwd(x, kernel, stride):
    return _lax_same_conv(x, kernel, stride), (x, kernel)


def _same_conv_bwd(stride, residuals, dy):
    x, kernel = residuals
    dx = _lax_same_conv_transpose(dy, kernel, x.shape[1:3], stride)
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
    return _lax_same_conv_transpose(y, kernel, out_hw)


def _same_conv_transpose_fwd(y, kernel, out_hw):
    return _lax_same_conv_transpose(y, kernel, out_hw), (y, kernel)


def _same_conv_transpose_bwd(out_hw, residuals, g):
    y, kernel = residuals
    return _lax_same_conv(g, kernel, 2), _kernel_gradient(g, y, kernel, 2)


same_conv_transpose.defvjp(_same_conv_transpose_fwd, _same_conv_transpose_bwd)


class SameConv(nn.Module):
    """``nn.Conv(features, (k, k), strides=stride, padding="SAME")`` (Xavier-uniform kernel, zero bias) computed
    by :func:`same_conv`; parameters ``kernel`` (HWIO) and ``bias``."""

    features: int
    kernel_size: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.xavier_uniform(),
                            (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return same_conv(x, kernel, self.stride) + bias
