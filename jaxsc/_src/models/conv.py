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
layers, 1.2-6x slower), else XLA's. Before both, a convolution with few products per output value (k k C_in at
most ``DIRECT_MAX_TERMS``: every network's first layer, with one input channel, ORL's layers) is the sum over
the kernel's taps and input channels of shifted windows of the padded input,

    Y[:, i, j, :] = sum_{a, b, c} X[:, s i + a, s j + b, c] K[a, b, c, :]

which XLA fuses into one pass over the output: 2.3-5.7x faster than XLA's convolution on the first layers of
the DSC-Net and RGRL networks (``benchmarks/speed.py --sections conv``), slower past about 90 terms (EYaleB's
second layer, 0.8x). An optimisation barrier keeps the input's producer out of that fusion: XLA otherwise fused
the previous layer into it and recomputed it for every term (ORL's whole autoencoder gradient took 6.5x longer).

The stride-2 transposed convolution (the decoder's layers, and the input gradient of a stride-2 convolution) is,
on the CPU, one stride-1 convolution with 4x the output channels followed by a depth-to-space shuffle (the
sub-pixel or phase form): output pixel 2m + r (per axis, r in {0, 1}) receives only the taps t of its parity,
t = r + p - 2 j (p the SAME padding before), from input pixel m + j, so

    X[2 m + r] = sum_j Y[m + j] K[r + p - 2 j]      (taps outside 0..k-1 are zero)

and all four (row, column) parities are the output channels of one convolution of Y with the kernel
W[j, r] = K[r + p - 2 j] (itself a window sum where it has at most ``DIRECT_MAX_TERMS`` terms). XLA's own
transposed convolution is a convolution of Y dilated by zeros (``lhs_dilation``). On 2 cores the phase form
was 1.4-1.9x faster on the EYaleB decoder's layers and 1.0-3.4x on the others; with the window sums, the
gradient of a whole autoencoder on all n images became 1.13x (ORL), 1.44x (COIL20), 1.25x (RGRL's MNIST) and
1.42x (EYaleB) faster (``benchmarks/speed.py --sections conv``). Stride-1 transposes are XLA's. Other backends
(cuDNN) use their own convolutions throughout.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
PATCH_MAX_ELEMENTS = 2 ** 22  # the largest patch matrix (entries) for which the CPU's forward is P K
PATCH_GRADIENT_MAX_ELEMENTS = 2 ** 26  # the largest for which the CPU's kernel gradient is P^T dY
DIRECT_MAX_TERMS = 32  # the most products per output value (k k C_in) for which the CPU sums shifted windows


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


def uses_direct_sum(kernel_shape) -> bool:
    """Whether a convolution with this HWIO kernel is, on the CPU, :func:`_direct_sum` (at most
    ``DIRECT_MAX_TERMS`` products per output value)."""
    kh, kw, cin, _ = kernel_shape
    return jax.default_backend() == "cpu" and kh * kw * cin <= DIRECT_MAX_TERMS


def _pad_spatial(x: jax.Array, rows: tuple[int, int], cols: tuple[int, int]) -> jax.Array:
    """NHWC ``x`` with ``(before, after)`` zero rows and columns (negative: cropped)."""
    return jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*rows, 0), (*cols, 0), (0, 0, 0)))


def _pad_same(x: jax.Array, k: int, stride: int) -> jax.Array:
    """``x`` padded (or cropped) to the extent the SAME windows of a k x k, ``stride`` convolution read."""
    return _pad_spatial(x, *_window_padding(x.shape[1:3], k, stride))


def _windows(x: jax.Array, kh: int, kw: int, stride: int) -> list[jax.Array]:
    """The ``(a, b)`` tap of every VALID window of the padded ``x``, (n, out_h, out_w, C) each, row-major in
    (a, b)."""
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    return [x[:, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride]
            for a in range(kh) for b in range(kw)]


def _patches(x: jax.Array, k: int, stride: int) -> jax.Array:
    """P of the module docstring, shaped (n, out_h, out_w, k k C), columns ordered (row, column, channel)."""
    return jnp.concatenate(_windows(_pad_same(x, k, stride), k, k, stride), axis=-1)


def _direct_sum(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """The VALID convolution of the padded ``x`` as Y = sum_{a, b, c} X[:, s i + a, s j + b, c] K[a, b, c, :]
    (module docstring), one fused pass over the output."""
    kh, kw, cin, _ = kernel.shape
    # the barrier keeps x's producer out of the sum's fusion, which would recompute it for every term
    x = jax.lax.optimization_barrier(x)
    return sum(window[..., c:c + 1] * kernel[a // kw, a % kw, c]
               for a, window in enumerate(_windows(x, kh, kw, stride)) for c in range(cin))


def _lax_conv(x, kernel, stride):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=_DIMENSIONS)


def _forward(x, kernel, stride):
    if uses_direct_sum(kernel.shape):
        return _direct_sum(_pad_same(x, kernel.shape[0], stride), kernel, stride)
    if uses_patch_forward(x.shape, kernel.shape[0], stride):
        return _patches(x, kernel.shape[0], stride) @ kernel.reshape(-1, kernel.shape[-1])
    return _lax_conv(x, kernel, stride)


def uses_phase_transpose(stride: int) -> bool:
    """Whether the transposed convolution of this ``stride`` is :func:`_phase_transpose`."""
    return jax.default_backend() == "cpu" and stride == 2


def _phase_taps(size: int, k: int) -> tuple[np.ndarray, int, int]:
    """Along one axis of a stride-2 transpose to ``size`` pixels: the 0/1 tensor ``select[j, r, t]`` (offset j of
    the input read by output parity r with kernel tap t, j counted from the first offset any parity reads) and
    the padding ``(before, after)`` of the input for a VALID stride-1 convolution with ceil(size / 2) outputs."""
    before = _same_padding(size, k, 2)[0]
    taps = [((r + before - t) // 2, r, t) for r in (0, 1) for t in range(k) if (r + before - t) % 2 == 0]
    first = min(j for j, _, _ in taps)
    width = max(j for j, _, _ in taps) - first + 1
    select = np.zeros((width, 2, k), np.float32)
    for j, r, t in taps:
        select[j - first, r, t] = 1.0
    # the input and the output of each parity both have ceil(size / 2) pixels
    return select, -first, width - 1 + first


def _phase_transpose(y: jax.Array, kernel: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """The stride-2 transposed convolution in the phase form of the module docstring."""
    n, _, _, cy = y.shape
    cx = kernel.shape[2]
    (sel_h, top, bottom), (sel_w, left, right) = (_phase_taps(size, kernel.shape[0]) for size in out_hw)
    # W[j, i, (r, s, x)] over input channels y: K[t, u, x, y] at the taps (t, u) that parities (r, s) read
    w = jnp.einsum("jrt,ksu,tuxy->jkyrsx", sel_h, sel_w, kernel).reshape(
        sel_h.shape[0], sel_w.shape[0], cy, 4 * cx).astype(y.dtype)
    y = _pad_spatial(y, (top, bottom), (left, right))
    if uses_direct_sum(w.shape):
        x = _direct_sum(y, w, 1)
    else:
        x = jax.lax.conv_general_dilated(y, w, (1, 1), "VALID", dimension_numbers=_DIMENSIONS)
    half_h, half_w = x.shape[1:3]
    x = x.reshape(n, half_h, half_w, 2, 2, cx).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * half_h, 2 * half_w, cx)
    return x[:, :out_hw[0], :out_hw[1]]


def _transpose(y, kernel, out_hw, stride=2):
    if uses_phase_transpose(stride):
        return _phase_transpose(y, kernel, out_hw)
    x_shape = jax.ShapeDtypeStruct((y.shape[0], *out_hw, kernel.shape[2]), y.dtype)
    (x,) = jax.linear_transpose(lambda x: _lax_conv(x, kernel, stride), x_shape)(y)
    return x


def _patch_kernel_gradient(x: jax.Array, dy: jax.Array, k: int, stride: int) -> jax.Array:
    """d<dy, same_conv(x, K)>/dK for a k x k kernel: P^T dy (module docstring)."""
    cin, cout = x.shape[-1], dy.shape[-1]
    return (_patches(x, k, stride).reshape(-1, k * k * cin).T @ dy.reshape(-1, cout)).reshape(k, k, cin, cout)


def _kernel_gradient(x: jax.Array, dy: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """d<dy, same_conv(x, K)>/dK at ``kernel``: :func:`_patch_kernel_gradient` where :func:`uses_patch_gradient`,
    else the gradient of XLA's convolution (not of :func:`_direct_sum`, whose gradient XLA computed as one
    broadcast product per term, all of them held at once: 10.5 GB of temporaries in the n = 15000 scaling step)."""
    if uses_patch_gradient(x.shape, kernel.shape[0], stride):
        return _patch_kernel_gradient(x, dy, kernel.shape[0], stride).astype(kernel.dtype)
    return jax.vjp(lambda k: _lax_conv(x, k, stride), kernel)[1](dy)[0]


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
                            (self.kernel_size, self.kernel_size, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        return same_conv(x, kernel, self.stride) + bias
