"""SAI: the sample-assignment invariance objective (papers/sai_*: Eq. 5-11).

Two soft assignments of the same samples to the same centres, under different closeness functions, are made to
agree by a KL divergence between them (:func:`sai_loss`: KL(P1 || P2) by default, the paper's KL(P2 || P1) as an
option, and the roles of prediction and target swapped as another); the predicted label is argmax_j P1_ij.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsc._src.losses.distances import DISTANCES, euclidean_distance

LOG_EPS = 1e-12
SAI_VARIANTS = {"homo": "euclidean", "hoe": "cosine", "hot": "correlation", "hit": "cityblock"}


def hinge_closeness(z: jax.Array) -> jax.Array:
    """Q1_ij = max(0, u_i - z_ij), u_i = mean_j z_ij (Eq. 7; z Euclidean in every variant)."""
    return jax.nn.relu(jnp.mean(z, axis=1, keepdims=True) - z)


def student_closeness(z: jax.Array) -> jax.Array:
    """Q2_ij = (1 + z_ij^2)^-1 / sum_j' (1 + z_ij'^2)^-1 (Eq. 8)."""
    q = 1.0 / (1.0 + jnp.square(z))
    return q / jnp.sum(q, axis=1, keepdims=True)


def frequency_normalized(q: jax.Array, power: float = 2.0) -> jax.Array:
    """P_ij = (Q_ij^r / f_j) / sum_j' (Q_ij'^r / f_j'), f_j = sum_i Q_ij (Eq. 6, r = ``power``)."""
    tiny = jnp.finfo(q.dtype).tiny
    weighted = q ** power / jnp.maximum(jnp.sum(q, axis=0, keepdims=True), tiny)
    return weighted / jnp.maximum(jnp.sum(weighted, axis=1, keepdims=True), tiny)


def sai_closeness(h: jax.Array, centres: jax.Array, metric: str = "cosine") -> tuple[jax.Array, jax.Array]:
    """``(Q1, Q2)``: the hinge closeness of Euclidean distances (Eq. 7) and the Student closeness of the ``metric``
    distances (Eq. 8; ``euclidean``: HOMO, ``cosine``: HOE, ``correlation``: HOT, ``cityblock``: HIT)."""
    if metric not in DISTANCES:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(DISTANCES)}")
    h = h.reshape(h.shape[0], -1)
    if centres.ndim != 2 or centres.shape[1] != h.shape[1]:
        raise ValueError(f"centres must be (k, {h.shape[1]}), got shape {centres.shape}")
    return hinge_closeness(euclidean_distance(h, centres)), student_closeness(DISTANCES[metric](h, centres))


def sai_assignments(h: jax.Array, centres: jax.Array, metric: str = "cosine",
                    power: float = 2.0) -> tuple[jax.Array, jax.Array]:
    """``(P1, P2)``: :func:`sai_closeness` turned into assignments by Eq. 6 (:func:`frequency_normalized`)."""
    q1, q2 = sai_closeness(h, centres, metric)
    return frequency_normalized(q1, power), frequency_normalized(q2, power)


def _kl(p: jax.Array, q: jax.Array) -> jax.Array:
    """sum p log(p / q) with 0 log 0 = 0 (safe gradients where p = 0) and q clamped at LOG_EPS."""
    positive = p > 0
    safe_p = jnp.where(positive, p, 1.0)
    return jnp.sum(jnp.where(positive, p * (jnp.log(safe_p) - jnp.log(jnp.maximum(q, LOG_EPS))), 0.0))


KL_DIRECTIONS = ("prediction_first", "target_first")
SAI_TARGETS = ("p2", "p1")


def sai_loss(h: jax.Array, centres: jax.Array, metric: str = "cosine", power: float = 2.0,
             stop_target: bool = True, direction: str = "prediction_first", target: str = "p2",
             sharpen_prediction: bool = True) -> jax.Array:
    """The KL between the two assignments over the batch (Eq. 4-5). With ``target="p2"`` (the paper's roles)
    P1 is the prediction and P2 the target:

    - ``direction="prediction_first"``: L = sum_ij P1_ij log(P1_ij / P2_ij);
    - ``direction="target_first"``: L = sum_ij P2_ij log(P2_ij / P1_ij) (SPEC section 6 and the paper's Eq. 13).

    The paper's Eq. 5 is garbled in the available text, but the proof of its Theorem 1 (Eq. 13) expands it as
    sum P2 log P2 - P2 log P1 = H(P1, P2) - H(P2), i.e. ``target_first``. The default departs from that: P1 is
    sparse by design (the hinge is 0 past the mean distance); with P1 second, its zero entries give log 0:
    clamped, they add a constant and no gradient, and training on digits collapsed to one cluster in our tests
    (seen in the cluster sizes, without labels). With P1 first, 0 log 0 = 0 and the objective is well posed.
    With ``stop_target`` the target is fixed in each step (as DEC's target distribution); otherwise gradients
    flow through both.

    ``target="p1"`` swaps the roles: P2 is the prediction and P1 the target, so ``direction="target_first"``
    gives L = sum_ij P1_ij log(P1_ij / P2_ij) with P1 fixed: DEC's self-training, with the sparse hinge
    assignment as the sharper target. Under the paper's roles P2 is the flatter of the two (with the cosine
    distance, (1 + z_ij^2)^-1 lies in [0.2, 1]), and minimising the KL flattens P1 towards it
    (``benchmarks/results/sai.md``).

    ``sharpen_prediction=False`` takes the prediction as its closeness normalised over the centres,
    Q_ij / sum_j' Q_ij', instead of Eq. 6's P: with ``target="p1"`` and ``direction="target_first"``,
    L = sum_ij P1_ij log(P1_ij / Q2_ij), DEC's objective (target P = Q^2 / f normalised, prediction Q) with the
    target taken from the other metric. A sharpened prediction can match a sharp target while its closeness
    stays flat, so self-training with it does not have to sharpen; DEC's unsharpened q has to. Where Q2 is
    bounded (cosine and correlation distances lie in [0, 2], so (1 + z^2)^-1 in [0.2, 1] and max_j Q2_ij
    <= 1 / (1 + 0.2 (k - 1))) no prediction can match a sharp target.
    """
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"unknown KL direction {direction!r}; choose one of {KL_DIRECTIONS}")
    if target not in SAI_TARGETS:
        raise ValueError(f"unknown SAI target {target!r}; choose one of {SAI_TARGETS}")
    q1, q2 = sai_closeness(h, centres, metric)
    predicted, fixed = (q1, q2) if target == "p2" else (q2, q1)
    fixed = frequency_normalized(fixed, power)
    if sharpen_prediction:
        prediction = frequency_normalized(predicted, power)
    else:
        prediction = predicted / jnp.maximum(jnp.sum(predicted, axis=1, keepdims=True), jnp.finfo(predicted.dtype).tiny)
    if stop_target:
        fixed = jax.lax.stop_gradient(fixed)
    return _kl(prediction, fixed) if direction == "prediction_first" else _kl(fixed, prediction)
