"""Readers for the on-disk formats of the benchmark files (MATLAB, IDX, CSV, MatrixMarket, HDF5).

MATLAB stores matrices column-major: a 32x32 image saved as a 1024-vector has pixel (row r, column c) at
index ``c * 32 + r``. :func:`matlab_images` undoes that so returned images are upright.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def load_mat(path: Path, keys: tuple[str, ...]) -> dict:
    """``scipy.io.loadmat`` with a clear error when a key is absent."""
    import scipy.io

    contents = scipy.io.loadmat(path)
    missing = [k for k in keys if k not in contents]
    if missing:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(f"{path}: MATLAB file lacks keys {missing}; it has {found}")
    return contents


def matlab_images(vectors: np.ndarray, height: int, width: int) -> np.ndarray:
    """Images from MATLAB column-major vectors.

    Args:
      vectors: ``(n, height * width)``, one column-major image per row.
    Returns:
      ``(n, height, width)`` with ``out[i, r, c] = vectors[i, c * height + r]``.
    """
    if vectors.ndim != 2 or vectors.shape[1] != height * width:
        raise ValueError(f"expected (n, {height * width}) image vectors, got {vectors.shape}")
    return vectors.reshape(vectors.shape[0], width, height).transpose(0, 2, 1)


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """float32 in [0, 1]: integer images are divided by 255, float images are kept as they are."""
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.float32) / np.float32(255.0)
    images = images.astype(np.float32)
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"float images must lie in [0, 1], got [{images.min()}, {images.max()}]")
    return images


def labels_from(raw: np.ndarray) -> np.ndarray:
    """Integer labels 0..K-1 (in the order of the sorted distinct raw labels)."""
    raw = np.asarray(raw).reshape(-1)
    _, codes = np.unique(raw, return_inverse=True)
    return codes.astype(np.int32)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzip-compressed or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type {data[2]:#x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: IDX header says {shape} but holds {array.size} values")
    return array.reshape(shape)


def read_csv_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as fh:
        return np.loadtxt(fh, delimiter=",")


def read_h5_split(path: Path, group: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` and ``target`` datasets of one group of an HDF5 file (the USPS layout)."""
    import h5py

    with h5py.File(path, "r") as fh:
        if group not in fh or "data" not in fh[group] or "target" not in fh[group]:
            raise ValueError(f"{path}: expected HDF5 datasets {group}/data and {group}/target")
        return np.asarray(fh[group]["data"]), np.asarray(fh[group]["target"])


def read_bbc_classes(path: Path, n_docs: int) -> np.ndarray:
    """Labels from an mlg.ucd.ie ``.classes`` file: ``%`` header lines, then ``doc_index class_index``."""
    labels = np.full(n_docs, -1, dtype=np.int32)
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("%"):
                continue
            doc, cls = line.split()
            labels[int(doc)] = int(cls)
    if (labels < 0).any():
        raise ValueError(f"{path}: {int((labels < 0).sum())} of {n_docs} documents have no class")
    return labels
