"""One OpenBLAS thread while the iterative solvers run on the CPU.

On the CPU, XLA runs LAPACK's routines (eigh, QR, Cholesky, triangular solves, SVD) through the OpenBLAS that
scipy ships, and its own matrix products on its own thread pool. After a multi-threaded call, OpenBLAS's worker
threads keep spinning for a while, waiting for the next one; on a machine with few cores they take those cores
from XLA's products that follow. The randomized and iterative solvers alternate dozens of small LAPACK calls with
large products, so they pay this every few milliseconds. Measured on 2 cores (cluster stage, randomized solver, n
= 1440): 158 ms with OpenBLAS's default threads, 87 ms with ``OPENBLAS_NUM_THREADS=1`` and 85 ms under this
module's limit; at n = 5000, 2.01 s -> 1.61 s (randomized) and 1.38 s -> 1.16 s (iterative), with the variable.
The dense solver's n x n ``eigh`` gains from the threads (0.37 s against 0.55 s at n = 1440), so it keeps them.
scikit-learn's k-means limits BLAS threads the same way, with the same library (``threadpoolctl``).
"""
from __future__ import annotations

import contextlib
import functools
import importlib

import jax
from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    # The controller only knows the libraries loaded when it is built (a scan of about 1 ms; limiting through it
    # afterwards costs microseconds). jaxlib's CPU LAPACK kernels come from scipy.linalg.cython_lapack, which a
    # plain `import jax` does not load, so load it first.
    importlib.import_module("scipy.linalg.cython_lapack")
    return ThreadpoolController()


def on_cpu(array: jax.Array) -> bool:
    """Whether every device holding ``array`` is a CPU."""
    return all(device.platform == "cpu" for device in array.devices())


@contextlib.contextmanager
def single_blas_thread():
    """Within the block, every BLAS library loaded in the process (OpenBLAS, MKL, ...) uses one thread; their
    previous thread counts come back after it. Work dispatched asynchronously must be finished inside the block
    (``jax.block_until_ready``) to run under the limit."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
