"""Memory plan of a training run, made before any n x n array is allocated.

The plan is XLA's own: the jitted step is lowered and compiled on abstract arrays (``jax.ShapeDtypeStruct``,
nothing is allocated) and ``compiled.memory_analysis()`` gives the bytes of its arguments (parameters, optimiser
state, data), its outputs and its temporaries. The step donates its state, so outputs that alias arguments cost
nothing extra:

    peak = arguments + outputs - aliased + temporaries   (per device when C is split over a mesh).

:func:`check_train_memory` compares that peak with the memory the device has free and fails with the options that
shrink it.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import jax
import numpy as np

GiB = 2.0 ** 30


class MemoryPlan(NamedTuple):
    """Bytes of one compiled training step (per device).

    Attributes:
      argument_bytes: parameters, optimiser state and data.
      output_bytes: the new state.
      alias_bytes: outputs written in place of donated arguments.
      temp_bytes: XLA's temporaries (activations, gradients, n x n intermediates of the losses).
      square_bytes: the part of the arguments held in n x n arrays (C and its optimiser state).
      available_bytes: free memory of the device, ``None`` where it cannot be read.
      device: the device the plan was made for.
    """

    argument_bytes: int
    output_bytes: int
    alias_bytes: int
    temp_bytes: int
    square_bytes: int
    available_bytes: int | None
    device: str

    @property
    def peak_bytes(self) -> int:
        """arguments + outputs - aliased + temporaries."""
        return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes


def available_memory(device: jax.Device | None = None) -> int | None:
    """Free bytes of ``device`` (default: the first device): ``bytes_limit - bytes_in_use`` from the device's
    allocator statistics (GPU, TPU), ``MemAvailable`` of ``/proc/meminfo`` on a Linux CPU, else ``None``."""
    device = jax.devices()[0] if device is None else device
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def abstract(tree, shardings=None):
    """``tree`` with every array replaced by a ``jax.ShapeDtypeStruct`` (with the matching leaf of
    ``shardings`` when given)."""
    if shardings is None:
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(np.shape(a), a.dtype, sharding=s), tree, shardings)


def square_bytes(tree, n: int) -> int:
    """Bytes of the ``(n, n)`` leaves of ``tree`` (C, its gradient-shaped optimiser moments)."""
    return sum(int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree)
               if tuple(leaf.shape) == (n, n))


def plan_from_compiled(compiled, square: int, device: jax.Device, available: int | None) -> MemoryPlan:
    """A :class:`MemoryPlan` from a compiled step's ``memory_analysis()`` (zeros where the backend gives
    none), ``square`` bytes of n x n arrays and ``available`` free bytes on ``device``."""
    memory = compiled.memory_analysis()
    get = lambda name: int(getattr(memory, name, 0) or 0) if memory is not None else 0  # noqa: E731
    return MemoryPlan(get("argument_size_in_bytes"), get("output_size_in_bytes"), get("alias_size_in_bytes"),
                      get("temp_size_in_bytes"), square, available, str(device))


def check_train_memory(plan: MemoryPlan, headroom: float = 0.9) -> MemoryPlan:
    """``plan``, or a ``MemoryError`` when its peak exceeds ``headroom`` times the free memory, naming the bytes
    and the options that cut them."""
    if plan.available_bytes is None or plan.peak_bytes <= headroom * plan.available_bytes:
        return plan
    raise MemoryError(
        f"this training step needs about {plan.peak_bytes / GiB:.2f} GiB on {plan.device} "
        f"(n x n arrays: C and its optimiser state {plan.square_bytes / GiB:.2f} GiB; temporaries "
        f"{plan.temp_bytes / GiB:.2f} GiB) but only {plan.available_bytes / GiB:.2f} GiB are free. To fit: train on "
        "a sample and label the rest out of sample (jaxsc.fit_large_scale, CLI --subsample M); split C over several "
        "devices (mesh=...); keep C's Adam moments in bfloat16 (preset coef_state_dtype='bfloat16'). "
        "check_memory=False skips this check.")
