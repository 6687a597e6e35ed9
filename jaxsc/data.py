"""Datasets: named loaders, the data directory, and synthetic union-of-subspaces data."""
from jaxsc._src.data.datasets import DATASETS, Dataset, availability, load, names
from jaxsc._src.data.files import DATA_DIR_ENV, DataFile, DataFileError, resolve_data_dir, sha256sum
from jaxsc._src.data.formats import matlab_images, read_idx
from jaxsc._src.data.synthetic import union_of_subspaces

__all__ = ["DATASETS", "DATA_DIR_ENV", "DataFile", "DataFileError", "Dataset", "availability", "load",
           "matlab_images", "names", "read_idx", "resolve_data_dir", "sha256sum", "union_of_subspaces"]
