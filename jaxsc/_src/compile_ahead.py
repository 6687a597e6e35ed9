"""Jitted functions compiled ahead of time in a background thread.

XLA's compiler releases the GIL, so a compilation handed to a worker thread proceeds while the caller goes on,
e.g. trains: :func:`jaxsc.run` compiles its fine-tune step during pretraining and its cluster stage during the
fine-tune, ``jaxsc run`` its k-means baseline during the first seed. Tracing and lowering stay in the calling
thread, where jax's context settings (default device, matmul precision) apply.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache, partial
from typing import Any, Callable

import jax
import numpy as np

from jaxsc._src.train.memory import abstract

_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxsc-compile")


@lru_cache(maxsize=32)
def _compile(jitted: Callable, tree, leaves: tuple, static: tuple) -> Future:
    """``jitted`` lowered here for the keyword arguments ``tree.unflatten(leaves)`` (abstract) and the ``static``
    ones, compiled by the worker; kept, so that equal requests (e.g. one per seed) compile once, as a jitted call
    would."""
    return _COMPILER.submit(jitted.lower(**tree.unflatten(leaves), **dict(static)).compile)


class CompiledAhead:
    """``jitted`` compiled in a background thread for keyword arguments with the shapes and dtypes of
    ``arguments`` (pytrees of arrays or of ``jax.ShapeDtypeStruct``) on the default device, with its static
    arguments ``static`` fixed. Calling it runs the compilation or ``jitted`` (:meth:`bind`); a loop binds once.
    """

    def __init__(self, jitted: Callable, arguments: dict[str, Any], **static):
        self.jitted, self.static = jitted, static
        self.sharding = jax.device_put(np.zeros((), np.int8)).sharding  # the default device, in this context
        self.arguments = abstract(arguments)
        leaves, tree = jax.tree.flatten(self.arguments)
        placed = tuple(jax.ShapeDtypeStruct(spec.shape, spec.dtype, sharding=self.sharding) for spec in leaves)
        self._executable = _compile(jitted, tree, placed, tuple(sorted(static.items())))

    def serves(self, jitted: Callable, **static) -> bool:
        """Whether this is ``jitted`` with these static arguments."""
        return jitted is self.jitted and static == self.static

    def matches(self, **arguments) -> bool:
        """Whether these arguments can run the compilation."""
        leaves, tree = jax.tree.flatten(arguments)
        return (tree == jax.tree.structure(self.arguments) and abstract(leaves) == jax.tree.leaves(self.arguments)
                and all(isinstance(leaf, jax.Array) and leaf.sharding.is_equivalent_to(self.sharding, leaf.ndim)
                        for leaf in leaves))

    def bind(self, **arguments) -> Callable:
        """The function to call with keyword arguments like ``arguments``: the compilation when they match it
        (waiting for it if it is not finished; a compilation error is raised here), else ``jitted`` with the
        static arguments. Checked once: a loop binds before its first call, provided every call's arguments
        keep the shapes, dtypes and device of the first (a training step's state does)."""
        if self.matches(**arguments):
            return self._executable.result()
        return partial(self.jitted, **self.static)

    def __call__(self, **arguments):
        return self.bind(**arguments)(**arguments)
