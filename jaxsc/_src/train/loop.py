"""One training loop for every method: a jitted, state-donating step called from a thin host loop.

A method is an *objective*: a hashable (frozen dataclass) object with

- ``loss(params, batch) -> (loss, aux)``, a pure function;
- ``optimizer() -> optax.GradientTransformation``;
- ``monitored(params) -> array | None``, the parameter watched by the early stop (C for the DSC family);
- optionally ``stochastic = True``: then ``loss(params, batch, key)`` gets a fresh PRNG key every step
  (e.g. the corruption of a denoising autoencoder);
- optionally ``constrain(params) -> params``: a projection applied to the initial parameters and after every
  update, inside the step (the DSC family's diag(C) = 0).

Because the objective is hashable it is a static argument of the jitted step: runs with equal settings
(e.g. several seeds) reuse one compiled step. The early stop is decided on the device: once the relative change
``||C_t - C_{t-1}||_F / ||C_{t-1}||_F`` has stayed below ``tol`` for ``patience`` consecutive steps, the step
keeps the parameters, loss and step count as they are (an elementwise select), so results are exactly those of
stopping at that step even though the host only looks every ``log_every`` steps.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsc._src.compile_ahead import CompiledAhead
from jaxsc._src.train.memory import (MemoryPlan, abstract, available_memory, check_train_memory, plan_from_compiled,
                                     square_bytes)


@dataclasses.dataclass(frozen=True)
class EarlyStop:
    """Stop when the monitored parameter's relative change stays below ``tol`` for ``patience`` steps."""

    tol: float = 1e-6
    patience: int = 2


class TrainState(NamedTuple):
    params: Any
    opt_state: Any
    step: jax.Array  # steps that changed the parameters
    calm: jax.Array  # consecutive steps with relative change below the early-stop tolerance
    loss: jax.Array  # loss at the last step taken
    aux: Any  # the objective's auxiliary outputs at the last step taken


class TrainResult(NamedTuple):
    """Output of :func:`train`.

    Attributes:
      params: final parameters.
      history: ``(step, loss)`` pairs recorded every ``log_every`` steps and at the end.
      steps: steps actually taken (fewer than asked when stopped early).
      stopped_early: whether the early-stop rule fired.
      seconds: wall time of the loop, compilation included.
    """

    params: Any
    history: list
    steps: int
    stopped_early: bool
    seconds: float


def _select_batch(data, key, step, batch_size):
    n = jax.tree.leaves(data)[0].shape[0]
    per_epoch = n // batch_size
    epoch, position = jnp.divmod(step, per_epoch)
    order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
    idx = jax.lax.dynamic_slice(order, (position * batch_size,), (batch_size,))
    return jax.tree.map(lambda leaf: leaf[idx], data)


def _loss_fn(objective, key, step):
    """``objective.loss``, given a per-step key (folded from ``key``) when the objective is stochastic."""
    if getattr(objective, "stochastic", False):
        return partial(objective.loss, key=jax.random.fold_in(jax.random.fold_in(key, 0x5A1), step))
    return objective.loss


@partial(jax.jit, static_argnames=("objective", "batch_size", "early_stop"), donate_argnums=(0,))
def train_step(state: TrainState, data, key, objective, batch_size: int | None = None,
               early_stop: EarlyStop | None = None) -> TrainState:
    """One optimiser step of ``objective`` on ``data`` (the full batch, or a shuffled mini-batch).

    Under ``early_stop``, once ``state.calm`` has reached its patience the step returns the same parameters,
    step count, loss and auxiliary outputs (selected elementwise, not by a ``lax.cond``, whose plan copied C and
    its Adam moments: at n = 1024, 3.4 units of C of temporaries against 1.7 now, as without early stop); the
    optimiser's moments still advance, on the unchanged parameters (they are not part of a result). The step is
    computed in full until the host reads the stop, at most ``log_every`` - 1 steps later.
    """
    batch = data if batch_size is None else _select_batch(data, key, state.step, batch_size)
    loss_fn = _loss_fn(objective, key, state.step)
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
    loss = loss.astype(state.loss.dtype)  # float32 whatever the parameters' dtype: the step's types stay fixed
    updates, opt_state = objective.optimizer().update(grads, state.opt_state, state.params)
    params = _constrain(objective, optax.apply_updates(state.params, updates))
    n = jax.tree.leaves(batch)[0].shape[0]
    readers = [loss, aux, [g for g in jax.tree.leaves(grads) if g.shape != (n, n)]]
    step, calm = state.step + 1, state.calm
    if early_stop is not None:
        old = objective.monitored(state.params)
        change = jnp.linalg.norm(objective.monitored(params) - old) / jnp.maximum(jnp.linalg.norm(old),
                                                                                  jnp.finfo(old.dtype).tiny)
        readers.append(change)
        stopped = state.calm >= early_stop.patience
        params, loss, aux, step = jax.tree.map(lambda current, new: jnp.where(stopped, current, new),
                                               (state.params, state.loss, state.aux, state.step),
                                               (params, loss, aux, step))
        calm = jnp.where(stopped, calm, jnp.where(change < early_stop.tol, calm + 1, 0))
    return TrainState(_after(params, readers), opt_state, step, calm, loss, aux)


def _after(params, readers):
    """``params`` unchanged in value, computed after every array in ``readers``: a zero made from them, 0 times a
    finite scalar, is added to each leaf. With ``readers`` every other use of the old parameters in the step (the
    loss and its terms, the gradients other than C's, whose products read C, the early stop's change of C), XLA
    writes the new parameters over the donated old ones in place. Without the dependency its copy insertion could
    not order C's update after, e.g., the product C^T G of the network's gradient, and copied C at the start of
    every step (an MNIST-shaped DSC step's plan at n = 2000-8000: 0.5-0.6 units of C more).
    """
    total = sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree.leaves(readers))
    zero = 0.0 * jnp.nan_to_num(total, nan=0.0, posinf=0.0, neginf=0.0)
    return jax.tree.map(lambda leaf: leaf + zero.astype(leaf.dtype), params)


def _constrain(objective, params):
    """``objective.constrain(params)`` where the objective has one, else ``params``."""
    constrain = getattr(objective, "constrain", None)
    return params if constrain is None else constrain(params)


@partial(jax.jit, static_argnums=0, donate_argnums=1)
def _constrained_copy(objective, params):
    """The constrained initial parameters, written over ``params`` (the loop's own copy)."""
    return _constrain(objective, params)


def _aux_shape(objective, params, data, batch_size):
    batch = data if batch_size is None else jax.tree.map(lambda leaf: leaf[:batch_size], data)
    loss_fn = _loss_fn(objective, jax.random.PRNGKey(0), 0)
    return jax.eval_shape(lambda p, b: loss_fn(p, b)[1], params, batch)


def _initial_state(objective, params, data, batch_size) -> TrainState:
    aux = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), _aux_shape(objective, params, data, batch_size))
    return TrainState(params, objective.optimizer().init(params), jnp.zeros((), jnp.int32),
                      jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32), aux)


def _abstract_state(objective, params, data, batch_size) -> TrainState:
    """The initial :class:`TrainState`'s shapes and dtypes (``jax.ShapeDtypeStruct`` leaves); ``params`` and
    ``data`` may be abstract."""
    return jax.eval_shape(lambda p, d: _initial_state(objective, p, d, batch_size), abstract(params), abstract(data))


def sample_matrix_shardings(tree, n: int, mesh: Mesh, axis: str | None = None):
    """A tree of shardings for ``tree``: every ``(n, n)`` leaf split by rows over ``mesh``'s ``axis`` (default:
    its first axis), every other leaf replicated. ``n`` must be divisible by the axis size."""
    axis = mesh.axis_names[0] if axis is None else axis
    if n % mesh.shape[axis]:
        raise ValueError(f"n = {n} samples cannot be split evenly over {mesh.shape[axis]} devices on axis {axis!r}")
    rows, replicated = NamedSharding(mesh, P(axis, None)), NamedSharding(mesh, P())
    return jax.tree.map(lambda leaf: rows if tuple(getattr(leaf, "shape", ())) == (n, n) else replicated, tree)


def shard_sample_matrices(tree, n: int, mesh: Mesh, axis: str | None = None):
    """Place every ``(n, n)`` leaf of ``tree`` (C and its optimiser moments) split by rows over ``mesh``'s
    ``axis`` (default: its first axis), and every other leaf replicated (:func:`sample_matrix_shardings`).

    Works unchanged across hosts after ``jax.distributed.initialize()`` with a mesh over ``jax.devices()``.
    """
    return jax.tree.map(jax.device_put, tree, sample_matrix_shardings(tree, n, mesh, axis))


def plan_train_memory(objective, params, data, *, batch_size: int | None = None,
                      early_stop: EarlyStop | None = None, mesh: Mesh | None = None) -> MemoryPlan:
    """XLA's memory plan (:class:`jaxsc.train.MemoryPlan`, per device) of one step of
    ``train(objective, params, data, ...)``, compiled on abstract arrays: ``params`` and ``data`` may be
    ``jax.ShapeDtypeStruct`` trees, and nothing of their size is allocated."""
    n = jax.tree.leaves(data)[0].shape[0]
    batch_size = None if batch_size == n else batch_size
    state = _abstract_state(objective, params, data, batch_size)
    state_a, data_a = state, abstract(data)
    if mesh is not None:
        state_a = abstract(state, sample_matrix_shardings(state, n, mesh))
        data_a = abstract(data, sample_matrix_shardings(data, n, mesh))
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    compiled = train_step.lower(state_a, data_a, key, objective, batch_size, early_stop).compile()
    device = jax.devices()[0] if mesh is None else mesh.devices.flat[0]
    per_device = 1 if mesh is None else mesh.devices.size
    return plan_from_compiled(compiled, square_bytes(state, n) // per_device, device, available_memory(device))


def compile_train_step(objective, params, data, *, batch_size: int | None = None,
                       early_stop: EarlyStop | None = None) -> CompiledAhead:
    """The step of ``train(objective, params, data, ...)`` compiled in a background thread
    (:class:`jaxsc._src.compile_ahead.CompiledAhead`), for ``train``'s ``compiled_step``: ``params`` and ``data``
    may be ``jax.ShapeDtypeStruct`` trees, so it can start before they exist (:func:`jaxsc.run` compiles the
    fine-tune step while the autoencoder pretrains). Single device only (no mesh)."""
    n = jax.tree.leaves(data)[0].shape[0]
    batch_size = None if batch_size == n else batch_size
    return CompiledAhead(train_step, dict(state=_abstract_state(objective, params, data, batch_size), data=data,
                                          key=jax.random.PRNGKey(0)),
                         objective=objective, batch_size=batch_size, early_stop=early_stop)


def _terms_text(aux) -> str:
    """`` (rec 1.2e+04, se 3.4e+05)`` for an objective whose auxiliary output names two or more scalar terms
    (unweighted, as ``loss`` returns them); empty otherwise."""
    if not isinstance(aux, dict) or len(aux) < 2 or any(jnp.ndim(v) for v in aux.values()):
        return ""
    values = jax.device_get(aux)  # one transfer for all terms
    return " (" + ", ".join(f"{name} {float(value):.3g}" for name, value in values.items()) + ")"


def train(objective, params, data, steps: int, *, key: jax.Array | None = None, batch_size: int | None = None,
          early_stop: EarlyStop | None = None, log_every: int = 50, verbose: bool = True,
          desc: str = "train", mesh: Mesh | None = None,
          stop_check: Callable[[Any], bool] | None = None, check_memory: bool = True,
          compiled_step: CompiledAhead | None = None, give_sample_matrices: bool = False) -> TrainResult:
    """Run ``steps`` optimiser steps of ``objective`` from ``params``.

    Args:
      objective: see the module docstring.
      params: initial parameters (a pytree); they are copied, the caller's arrays are not donated (but see
        ``give_sample_matrices``).
      data: array or pytree of arrays with the samples on axis 0.
      steps: number of steps (full-batch: epochs).
      key: PRNG key for mini-batch order.
      batch_size: mini-batch size; ``None`` trains on the full batch every step.
      early_stop: optional :class:`EarlyStop` on ``objective.monitored(params)``.
      log_every: the host reads the loss (one device sync) every this many steps.
      verbose: print a progress line (step, loss, the objective's terms unweighted when it names several,
        elapsed) to stderr at each read.
      desc: label of the progress lines.
      mesh: split C (every ``(n, n)`` parameter) and its optimiser state by rows over this device mesh; the
        data and the network are replicated (:func:`shard_sample_matrices`).
      stop_check: called with the parameters at every read (every ``log_every`` steps); returning ``True``
        stops training there (host-side rules such as SAI's assignment-change test).
      check_memory: before allocating anything, when C and its optimiser state alone could take a quarter of the
        free memory, compile the step on abstract arrays and raise a ``MemoryError`` with the options that shrink
        it if XLA's plan does not fit (:func:`plan_train_memory`, :func:`jaxsc.train.check_train_memory`).
      compiled_step: the step from :func:`compile_train_step`, run when it was compiled for this training (the
        same objective, batch size and early stop; state and data of its shapes on its device); otherwise the
        jitted step runs.
      give_sample_matrices: the ``(n, n)`` leaves of ``params`` (C) are not copied but donated to the first step,
        which writes over them, so that the caller's C does not stay alive beside the loop's for the whole run (one
        n x n array more than XLA's plan); the caller must not use them afterwards (:func:`jaxsc.fit` creates C
        itself and gives it).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    n = jax.tree.leaves(data)[0].shape[0]
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must lie in 1..{n}, got {batch_size}")
    if batch_size == n:
        batch_size = None
    key = jax.random.PRNGKey(0) if key is None else key
    if check_memory:
        free = available_memory(None if mesh is None else mesh.devices.flat[0])
        per_device = 1 if mesh is None else mesh.devices.size
        if free is not None and 4 * square_bytes(params, n) / per_device > 0.25 * free:
            check_train_memory(plan_train_memory(objective, params, data, batch_size=batch_size,
                                                 early_stop=early_stop, mesh=mesh))
    def own(leaf):  # the loop's copy, which the step donates, but of a sample matrix the caller gives
        return leaf if give_sample_matrices and jnp.shape(leaf) == (n, n) else jnp.array(leaf)

    params = jax.tree.map(own, params)
    if getattr(objective, "constrain", None) is not None:
        params = _constrained_copy(objective, params)
    state = _initial_state(objective, params, data, batch_size)
    if mesh is not None:
        state = shard_sample_matrices(state, n, mesh)
        data = shard_sample_matrices(data, n, mesh)
    static = dict(objective=objective, batch_size=batch_size, early_stop=early_stop)
    step = partial(train_step, **static)
    if compiled_step is not None and compiled_step.serves(train_step, **static):
        step = compiled_step.bind(state=state, data=data, key=key)
    history, start, stopped = [], time.perf_counter(), False
    for t in range(steps):
        state = step(state=state, data=data, key=key)
        if (t + 1) % log_every == 0 or t + 1 == steps:
            loss, taken = float(state.loss), int(state.step)
            history.append((taken, loss))
            stopped = early_stop is not None and int(state.calm) >= early_stop.patience
            stopped = stopped or (stop_check is not None and bool(stop_check(state.params)))
            if verbose:
                tail = " (early stop)" if stopped else ""
                print(f"[{desc}] step {taken}/{steps} loss {loss:.6g}{_terms_text(state.aux)} elapsed "
                      f"{time.perf_counter() - start:.1f}s{tail}", file=sys.stderr, flush=True)
            if not bool(jnp.isfinite(state.loss)):
                raise FloatingPointError(f"[{desc}] loss became {loss} at step {taken}; lower the learning rate")
            if stopped:
                break
    jax.block_until_ready(state.params)
    return TrainResult(state.params, history, int(state.step), stopped, time.perf_counter() - start)
