"""Reading legacy (non-zip) ``torch.save`` files without torch.

The legacy format is a sequence of pickles: a magic number, the protocol version, system info, the object
itself (tensors appear as persistent ids naming a storage), the list of storage keys, then for each key an
int64 element count followed by the storage's raw little-endian bytes.
"""
from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, key: str, dtype: np.dtype):
        self.key, self.dtype, self.data = key, dtype, None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self) -> np.ndarray:
        itemsize = self.storage.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset:], shape=self.size,
            strides=tuple(s * itemsize for s in self.stride)).copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return _LazyTensor(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh):
        super().__init__(fh)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unsupported object {module}.{name} in a torch weights file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype)
        return self.storages[key]


def load_legacy_torch(path: str | Path) -> dict[str, np.ndarray]:
    """A ``state_dict`` saved by ``torch.save`` in the legacy format, as numpy arrays keyed by name."""
    path = Path(path)
    with open(path, "rb") as fh:
        if pickle.load(fh) != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy torch.save file (zip-format files need torch.load)")
        pickle.load(fh)  # protocol version
        pickle.load(fh)  # system info
        unpickler = _Unpickler(fh)
        state = unpickler.load()
        keys = pickle.load(fh)
        for key in keys:
            storage = unpickler.storages[key]
            count = int(np.frombuffer(fh.read(8), dtype="<i8")[0])
            raw = fh.read(count * storage.dtype.itemsize)
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return collections.OrderedDict((k, v.materialise()) for k, v in state.items())
