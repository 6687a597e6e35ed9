"""Optimisers for the n x n coefficient matrix.

Adam keeps two moments the size of C: with C itself and its gradient that is four n x n arrays, 78 GB at
n = 70,000 in float32. :func:`adam_compact` stores both moments in a narrower dtype (bfloat16: half the bytes) and
computes the update in float32; the parameters stay float32.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class CompactAdamState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def adam_compact(learning_rate: float, state_dtype=jnp.bfloat16, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam (Kingma & Ba) with both moments stored in ``state_dtype``:

        m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,  update = -lr m_hat / (sqrt(v_hat) + eps),

    m and v rounded to ``state_dtype`` after each step and the update computed from the rounded values, the
    arithmetic in float32. (From the unrounded m and v, XLA kept copies of C and of the old m beside the new
    ones: 2.5 n x n float32 arrays of temporaries in the compiled step, against 1 for the gradient.)
    """

    def init(params):
        zeros = lambda: jax.tree.map(lambda p: jnp.zeros(p.shape, state_dtype), params)  # noqa: E731
        return CompactAdamState(jnp.zeros((), jnp.int32), zeros(), zeros())  # two buffers: both are donated

    def update(grads, state, params=None):
        del params
        count = state.count + 1
        mu = jax.tree.map(lambda m, g: (b1 * m.astype(jnp.float32) + (1 - b1) * g).astype(state_dtype),
                          state.mu, grads)
        nu = jax.tree.map(lambda v, g: (b2 * v.astype(jnp.float32) + (1 - b2) * jnp.square(g)).astype(state_dtype),
                          state.nu, grads)
        c1, c2 = 1 - b1 ** count.astype(jnp.float32), 1 - b2 ** count.astype(jnp.float32)
        updates = jax.tree.map(lambda m, v: -learning_rate * (m.astype(jnp.float32) / c1)
                               / (jnp.sqrt(v.astype(jnp.float32) / c2) + eps), mu, nu)
        return updates, CompactAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)
