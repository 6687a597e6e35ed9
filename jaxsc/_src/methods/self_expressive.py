"""The self-expressive objective shared by DSC-Net, RGRL and PSSC (one objective, methods are weight settings).

    L = w_rec L_rec + w_reg R(C) + w_se ||Z - C Z||^2 + w_raw ||X - C X||^2
        + w_graph L_graph(P, S) + w_label L_label(P) + w_local sum_ij a_ij ||z_i - z_j||^2
        + w_distill L_distill(Z, W) + w_nce L_InfoNCE(Z, C Z),

with Z = enc(X) flattened per sample, X_hat = dec(C Z), S = (|C| + |C|^T)/2, P = softmax(Z W + b) and

- L_rec = ||X - X_hat||^2 (DSC-Net), or RGRL's relation-weighted form ||X - X_hat||^2 + 2 tr(X^T Ln X_hat)
  when ``laplacian`` is set (:func:`jaxsc.losses.laplacian_reconstruction_loss`);
- R(C) = ||C||_F^2 (L2) or ||C||_1 (L1);
- L_graph, L_label: PSSC's pseudo-supervision (:mod:`jaxsc.losses`), computed only when their weight is > 0;
- a_ij: UDLL's prior graph (:func:`jaxsc.losses.adaptive_neighbors` on the pretrained Z), passed with the data
  as ``{'x': X, 'neighbor_index': ..., 'neighbor_weight': ...}`` (sparse, k entries per sample);
- L_distill: LRSC's sum_{i != j} W_ij ||z_i - z_j||^2 (Eq. 4), or that sum divided by Z's mean squared pairwise
  distance (:func:`jaxsc.losses.distillation_loss`), W a heat kernel on teacher features given with the data.

DSC-Net: laplacian off, w_raw = w_graph = w_label = 0. RGRL: laplacian on, w_raw > 0 (RGRL-sc: laplacian off).
PSSC: laplacian on, w_reg = w_raw = 0, w_graph, w_label > 0, zero diagonal (PSSC-l: w_graph = w_label = 0).
UDLL: DSC-Net plus w_local > 0. LRSC: DSC-Net plus w_distill (teacher heat kernel) and w_nce.

diag(C) = 0 (``zero_diagonal``) is held by projection: the training loop zeroes C's diagonal before the first step
and after every update (:meth:`SelfExpressiveObjective.constrain`), so the loss reads C as it is. C X of the
raw-space term comes from the same product as C Z: C [Z, X].
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxsc._src.losses.coefficient import PENALTIES, coefficient_penalty
from jaxsc._src.losses.distillation import (DISTILLATION_FORMS, NCE_REDUCTIONS, distillation_loss, heat_kernel_weights,
                                            infonce_loss)
from jaxsc._src.losses.locality import locality_loss
from jaxsc._src.losses.graph import coefficient_similarity, laplacian_reconstruction_loss
from jaxsc._src.losses.pseudo_supervision import PSEUDO_GRAPH_LOSSES, pseudo_label_loss
from jaxsc._src.losses.reconstruction import reconstruction_loss
from jaxsc._src.losses.self_expression import self_expression_loss
from jaxsc._src.models.autoencoders import flatten
from jaxsc._src.models.classifier import classifier_probs, init_classifier
from jaxsc._src.models.self_expression import (init_coefficients, ridge_coefficients, self_express,
                                              without_diagonal)
from jaxsc._src.train.optimizers import adam_compact

_MATMUL_DTYPES = {None: None, "float32": None, "bfloat16": jnp.bfloat16}


def _split_batch(batch):
    """``(x, extras)`` from an array or a ``{'x': ..., ...}`` dict."""
    return (batch["x"], batch) if isinstance(batch, dict) else (batch, {})


def _distillation(z, extras, bandwidth, form):
    """LRSC's distillation term (:func:`jaxsc.losses.distillation_loss` of ``form``) with the row-normalised heat
    kernel W of the teacher features: ``extras['teacher_weights']`` when given (W computed once, for full-batch
    training; ``bandwidth`` is then not used), else from ``extras['teacher']`` in every step (mini-batches)."""
    if "teacher_weights" in extras:
        return distillation_loss(z, extras["teacher_weights"], form)
    if "teacher" not in extras:
        raise ValueError("w_distill > 0 needs teacher features: pass {'x': ..., 'teacher': ...} "
                         "(or the precomputed heat kernel as {'x': ..., 'teacher_weights': ...})")
    return distillation_loss(z, heat_kernel_weights(extras["teacher"], bandwidth, row_normalize=True), form)


def _check_distill_form(form):
    if form not in DISTILLATION_FORMS:
        raise ValueError(f"unknown distill_form {form!r}; choose one of {sorted(DISTILLATION_FORMS)}")


@dataclasses.dataclass(frozen=True)
class ReconstructionObjective:
    """Autoencoder pretraining with Adam(``learning_rate``):

        L = w_rec ||X - dec(enc(X))||^2 + w_distill D(Z),

    the second term (LRSC's distillation of ``distill_form``, :func:`jaxsc.losses.distillation_loss`, W a heat
    kernel on teacher features given with the batch as ``{'x', 'teacher'}``) only when ``w_distill > 0``.
    """

    model: nn.Module
    learning_rate: float = 1e-3
    w_rec: float = 1.0
    w_distill: float = 0.0
    bandwidth: float | None = None
    distill_form: str = "sum"

    def __post_init__(self):
        _check_distill_form(self.distill_form)

    def loss(self, params, batch):
        """``(loss, terms)`` on an array or ``{'x', 'teacher'}`` batch."""
        x, extras = _split_batch(batch)
        variables = {"params": params}
        z = self.model.apply(variables, x, method="encode")
        terms = {"rec": reconstruction_loss(x, self.model.apply(variables, z, method="decode"))}
        if self.w_distill > 0:
            terms["distill"] = _distillation(z, extras, self.bandwidth, self.distill_form)
        return self.w_rec * terms["rec"] + self.w_distill * terms.get("distill", 0.0), terms

    def optimizer(self):
        """Adam at ``learning_rate``."""
        return optax.adam(self.learning_rate)

    def monitored(self, params):
        """Nothing: no early stop."""
        return None


def self_expressive_forward(model: nn.Module, params, x, *, zero_diagonal=False, matmul_dtype=None, raw=False):
    """``(z, zc, x_hat)``: latent rows Z, self-expressed rows C Z, and the decoded X_hat = dec(C Z).

    With ``raw``, also C X (X's rows flattened) as a fourth output, for the raw-space subspace consistency: both
    come from one product C [Z, X], whose gradient with respect to C is one n x n product, not two summed.
    """
    variables = {"params": params["autoencoder"]}
    z_maps = model.apply(variables, x, method="encode")
    z = flatten(z_maps)
    rows = jnp.concatenate([z, flatten(x).astype(z.dtype)], axis=1) if raw else z
    expressed = self_express(params["coef"], rows, zero_diagonal=zero_diagonal,
                             matmul_dtype=_MATMUL_DTYPES[matmul_dtype])
    zc = expressed[:, :z.shape[1]]
    x_hat = model.apply(variables, zc.reshape(z_maps.shape), method="decode")
    return (z, zc, x_hat, expressed[:, z.shape[1]:]) if raw else (z, zc, x_hat)


@dataclasses.dataclass(frozen=True)
class SelfExpressiveObjective:
    """The DSC-family fine-tuning objective (module docstring) over ``{'autoencoder', 'coef'[, 'head']}``.

    Attributes:
      model: the autoencoder (``encode``/``decode`` methods).
      w_rec, w_reg, w_se: weights of reconstruction, coefficient penalty and latent self-expression.
      penalty: ``"l2"`` or ``"l1"``.
      zero_diagonal: hold diag(C) at 0 (:meth:`constrain`: the training loop sets it to 0 at the start and after
        every update, so every term sees C without its diagonal and no masked n x n copy of C is made; ``loss``
        itself reads C as given).
      lr_net, lr_coef: Adam learning rates of the network (autoencoder and head) and of C.
      matmul_dtype: ``None`` or ``"bfloat16"`` for C Z and its two gradient products (float32 sums).
      laplacian: use RGRL's relation-weighted reconstruction; ``self_loops``: build its graph from S + I.
      w_raw: weight of the raw-space subspace consistency ||X - C X||^2.
      w_graph, w_label: weights of PSSC's pseudo-graph and pseudo-label losses (they need a ``'head'``).
      graph_form: ``"contrastive"`` (paper) or ``"hinge"`` (reference code), see :mod:`jaxsc.losses`.
      label_threshold: confidence above which a pseudo-label counts (0.8 in PSSC).
      w_local: weight of UDLL's locality loss on the prior graph given with the data.
      w_distill, bandwidth, distill_form: weight of LRSC's distillation term with the heat kernel W of teacher
        features given with the data as ``'teacher'`` (``bandwidth=None``: median squared distance), or W itself
        as ``'teacher_weights'`` (built once for full-batch training), in the form ``"sum"``
        (sum_{i != j} W_ij ||z_i - z_j||^2, Eq. 4) or ``"normalized"`` (divided by Z's mean squared pairwise
        distance), :func:`jaxsc.losses.distillation_loss`.
      w_nce, nce_temperature, nce_reduction: weight, temperature and reduction over samples (``"mean"`` or
        ``"sum"``) of LRSC's InfoNCE between Z and C Z, :func:`jaxsc.losses.infonce_loss`.
      coef_state_dtype: ``None`` (float32 Adam) or ``"bfloat16"``: C's Adam moments stored in bfloat16
        (:func:`jaxsc.train.adam_compact`), two n x n float32 arrays fewer.
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
    laplacian: bool = False
    self_loops: bool = True
    w_raw: float = 0.0
    w_graph: float = 0.0
    w_label: float = 0.0
    graph_form: str = "contrastive"
    label_threshold: float = 0.8
    w_local: float = 0.0
    w_distill: float = 0.0
    bandwidth: float | None = None
    distill_form: str = "sum"
    w_nce: float = 0.0
    nce_temperature: float = 0.5
    nce_reduction: str = "mean"
    coef_state_dtype: str | None = None

    def __post_init__(self):
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; choose one of {sorted(PENALTIES)}")
        if self.matmul_dtype not in _MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be one of {list(_MATMUL_DTYPES)}, got {self.matmul_dtype!r}")
        if self.coef_state_dtype not in _MATMUL_DTYPES:
            raise ValueError(f"coef_state_dtype must be one of {list(_MATMUL_DTYPES)}, got {self.coef_state_dtype!r}")
        _check_distill_form(self.distill_form)
        if self.nce_reduction not in NCE_REDUCTIONS:
            raise ValueError(f"unknown nce_reduction {self.nce_reduction!r}; choose one of {NCE_REDUCTIONS}")
        if self.graph_form not in PSEUDO_GRAPH_LOSSES:
            raise ValueError(f"unknown graph_form {self.graph_form!r}; choose one of {sorted(PSEUDO_GRAPH_LOSSES)}")

    @property
    def uses_head(self) -> bool:
        """Whether the parameters need PSSC's classifier ``'head'``."""
        return self.w_graph > 0 or self.w_label > 0

    def loss(self, params, batch):
        """``(loss, terms)``: the weighted sum of the enabled terms and each term's value."""
        x, extras = _split_batch(batch)
        coef = params["coef"]
        z, zc, x_hat, *raw = self_expressive_forward(self.model, params, x, matmul_dtype=self.matmul_dtype,
                                                     raw=self.w_raw > 0)
        if self.laplacian:
            rec = laplacian_reconstruction_loss(x, x_hat, coef, self_loops=self.self_loops)
        else:
            rec = reconstruction_loss(x, x_hat)
        terms = {"rec": rec, "reg": coefficient_penalty(coef, self.penalty), "se": self_expression_loss(z, zc)}
        if raw:
            terms["raw"] = self_expression_loss(flatten(x), raw[0])
        if self.uses_head:
            probs = classifier_probs(params["head"], z)
            terms["graph"] = PSEUDO_GRAPH_LOSSES[self.graph_form](probs, coefficient_similarity(coef))
            terms["label"] = pseudo_label_loss(probs, self.label_threshold)
        if self.w_local > 0:
            if "neighbor_index" not in extras:
                raise ValueError("w_local > 0 needs the prior graph: pass {'x', 'neighbor_index', 'neighbor_weight'}")
            terms["local"] = locality_loss(z, extras["neighbor_index"], extras["neighbor_weight"])
        if self.w_distill > 0:
            terms["distill"] = _distillation(z, extras, self.bandwidth, self.distill_form)
        if self.w_nce > 0:
            terms["nce"] = infonce_loss(z, zc, self.nce_temperature, self.nce_reduction)
        weights = self.term_weights()
        return sum(weights[k] * v for k, v in terms.items()), terms

    def term_weights(self) -> dict:
        """The weight of each term that :meth:`loss` can return, by the term's name."""
        return {"rec": self.w_rec, "reg": self.w_reg, "se": self.w_se, "raw": self.w_raw,
                "graph": self.w_graph, "label": self.w_label, "local": self.w_local,
                "distill": self.w_distill, "nce": self.w_nce}

    def optimizer(self):
        """Adam with ``lr_coef`` for C and ``lr_net`` for everything else."""
        coef = optax.adam(self.lr_coef) if self.coef_state_dtype is None else \
            adam_compact(self.lr_coef, _MATMUL_DTYPES[self.coef_state_dtype])
        return optax.multi_transform({"net": optax.adam(self.lr_net), "coef": coef},
                                     lambda params: {k: jax.tree.map(lambda _: "coef" if k == "coef" else "net", v)
                                                     for k, v in params.items()})

    def constrain(self, params):
        """The projection the training loop applies after every update: diag(C) = 0 under ``zero_diagonal``
        (fused into the optimizer's update of C), nothing otherwise."""
        if not self.zero_diagonal:
            return params
        return {**params, "coef": without_diagonal(params["coef"])}

    def monitored(self, params):
        """C, watched by the early stop."""
        return params["coef"]


COEF_STARTS = ("constant", "ridge")


def ridge_start(objective: SelfExpressiveObjective, autoencoder_params: Any, x: jax.Array) -> jax.Array:
    """C at the exact minimiser, for the given network, of the objective's terms that are quadratic in C:

        w_se ||Z - C Z||_F^2 + w_raw ||X - C X||_F^2 + w_reg ||C||_F^2      (diag(C) = 0 under zero_diagonal),

    that is :func:`jaxsc.models.ridge_coefficients` of F = [sqrt(w_se) Z, sqrt(w_raw) X] (so that ||F - C F||^2 is
    the sum of the first two) with reg = w_reg: O(n^2 (d + D)) when F has fewer columns than n (no n x n
    factorisation). The reconstruction (through C Z) and the other terms are left to the fine-tune.

    Why: from the constant start at the presets' rate, on a synthetic union of subspaces at n >= 5000, C ends flat
    (one magnitude everywhere) and the labels near chance, while the pretrained code holds the subspaces (this C
    clusters it): ``benchmarks/results/speed_cpu.md`` (dense C at large n) has the fine-tune from both starts.
    Scaling the network's learning rate with n also recovers them there; the same problem fails at n = 1000 and
    2000 too (``large_n_rates.md``).

    Meant for F with fewer columns than samples (a small latent code at large n); on mnist-test's large-scale path
    (10 latent columns, 5000 samples) and at the presets' n (ORL) it lowered ACC (``rgrl_pssc.md``). With diag(C)
    free and F of rank n each sample expresses itself: the minimiser is I - reg (F F^T + reg I)^-1, close to I for
    a small reg, the trivial solution (COIL20 from DSC-Net's network, 3840 latent columns for 1440 samples: ACC
    0.11, ``rgrl_pssc.md``); a ``UserWarning`` says so.

    Raises:
      ValueError: without an L2 penalty of positive weight (no unique minimiser).
    """
    if objective.penalty != "l2" or not objective.w_reg > 0 or not objective.w_se > 0:
        raise ValueError("the ridge start needs penalty='l2' with w_reg > 0 and w_se > 0; got penalty="
                         f"{objective.penalty!r}, w_reg={objective.w_reg}, w_se={objective.w_se}")
    columns = [jnp.sqrt(objective.w_se) * flatten(objective.model.apply({"params": autoencoder_params}, x,
                                                                        method="encode"))]
    if objective.w_raw > 0:
        columns.append(jnp.sqrt(objective.w_raw) * flatten(x).astype(columns[0].dtype))
    rows = jnp.concatenate(columns, axis=1)
    if not objective.zero_diagonal and rows.shape[1] >= rows.shape[0]:
        warnings.warn(f"ridge start with diag(C) free and {rows.shape[1]} columns (latent + raw) for "
                      f"{rows.shape[0]} samples: each sample can express itself, so the start is close to C = I, the "
                      "trivial solution; use zero_diagonal=True or coef_start='constant'", UserWarning, stacklevel=2)
    return ridge_coefficients(rows, objective.w_reg, zero_diagonal=objective.zero_diagonal)


def init_self_expressive_params(autoencoder_params: Any, n: int, coef_init: float | jax.Array, *,
                                latent_dim: int | None = None, n_clusters: int | None = None,
                                key: jax.Array | None = None) -> dict:
    """``{'autoencoder', 'coef'}`` with C = ``coef_init * ones(n, n)``, or ``coef_init`` itself when it is an
    ``(n, n)`` array (e.g. :func:`ridge_start`), plus PSSC's ``'head'`` (a ``latent_dim`` -> K classifier,
    initialised from ``key``) when ``n_clusters`` is given."""
    if jnp.ndim(coef_init) == 0:
        coef = init_coefficients(n, coef_init)
    elif jnp.shape(coef_init) == (n, n):
        coef = coef_init
    else:
        raise ValueError(f"coef_init must be a number or an ({n}, {n}) array, got shape {jnp.shape(coef_init)}")
    params = {"autoencoder": autoencoder_params, "coef": coef}
    if n_clusters is not None:
        if latent_dim is None or key is None:
            raise ValueError("a classifier head needs latent_dim and key")
        params["head"] = init_classifier(key, latent_dim, n_clusters)
    return params
