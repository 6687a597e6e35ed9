"""Argument checks shared by the fitting functions and the cluster stage: each raises a ``ValueError`` that
names the problem (checked on static shapes, so they also run while a jitted function is traced)."""
from __future__ import annotations


def check_n_clusters(n_clusters: int, n: int) -> None:
    """``n_clusters`` must lie in 2..n for n samples."""
    if not 2 <= n_clusters <= n:
        raise ValueError(f"n_clusters must lie in 2..n = {n}, got {n_clusters}")


def check_square(matrix, what: str = "coefficient matrix") -> None:
    """``matrix`` must be n x n."""
    if len(matrix.shape) != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square {what}, got shape {tuple(matrix.shape)}")
