import collections
import io
import pickle
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsc import data, models
from jaxsc._src.models.reference_weights import conv_architecture
from conftest import needs_data

_MAGIC = 0x1950A86A20F9469CFC6C


def _write_legacy(path, tensors, monkeypatch):
    """Write ``tensors`` (name -> (array, stride)) in torch's legacy format, using stand-ins for torch's
    storage class and rebuild function so no torch is needed."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    storage_cls = type("FloatStorage", (), {"__module__": "torch"})

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = storage_cls, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class StorageRef:
        def __init__(self, key, flat):
            self.key, self.flat = key, flat

    class Tensor:
        def __init__(self, ref, shape, stride):
            self.ref, self.shape, self.stride = ref, shape, stride

        def __reduce__(self):
            return _rebuild_tensor_v2, (self.ref, 0, self.shape, self.stride, False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                return ("storage", storage_cls, obj.key, "cpu", obj.flat.size)
            return None

    refs, state = [], collections.OrderedDict()
    for i, (name, (flat, shape, stride)) in enumerate(tensors.items()):
        refs.append(StorageRef(str(i), flat.astype("<f4")))
        state[name] = Tensor(refs[-1], shape, stride)
    buf = io.BytesIO()
    for obj in (_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(obj, buf, protocol=2)
    Pickler(buf, protocol=2).dump(state)
    pickle.dump([r.key for r in refs], buf, protocol=2)
    for r in refs:
        buf.write(np.int64(r.flat.size).tobytes() + r.flat.tobytes())
    path.write_bytes(buf.getvalue())


def test_legacy_reader_roundtrip(tmp_path, monkeypatch):
    a = np.arange(24, dtype=np.float32)
    b = np.arange(6, dtype=np.float32) * 0.5
    path = tmp_path / "w.pkl"
    # "t" is a transposed (non-contiguous) view of a's storage: shape (4, 6) with strides (1, 4).
    _write_legacy(path, {"w": (a, (2, 3, 4), (12, 4, 1)), "t": (a, (4, 6), (1, 4)), "b": (b, (6,), (1,))},
                  monkeypatch)
    monkeypatch.delitem(sys.modules, "torch")
    state = models.load_legacy_torch(path)
    np.testing.assert_array_equal(state["w"], a.reshape(2, 3, 4))
    np.testing.assert_array_equal(state["t"], a.reshape(6, 4).T)
    np.testing.assert_array_equal(state["b"], b)


def test_rejects_other_files(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(123))
    with pytest.raises(ValueError, match="not a legacy torch.save file"):
        models.load_legacy_torch(path)
    with pytest.raises(ValueError, match="no DSC-Net reference weights for 'mnist'"):
        models.load_reference_weights("mnist", tmp_path)


def test_convert_layout():
    state = {"encoder.conv1.weight": np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3),
             "encoder.conv1.bias": np.zeros(2, np.float32),
             "decoder.deconv1.weight": np.ones((2, 1, 3, 3), np.float32), "decoder.deconv1.bias": np.zeros(1)}
    params = models.convert_state_dict(state, upright_kernels=False)["params"]
    assert params["enc0_kernel"].shape == (3, 3, 1, 2) and params["dec0_kernel"].shape == (3, 3, 1, 2)
    assert params["enc0_kernel"][0, 1, 0, 1] == state["encoder.conv1.weight"][1, 0, 0, 1]
    swapped = models.convert_state_dict(state, upright_kernels=True)["params"]
    assert swapped["enc0_kernel"][0, 1, 0, 1] == state["encoder.conv1.weight"][1, 0, 1, 0]
    assert conv_architecture(params) == ((3,), (2,))


@needs_data("pretrained_dscnet/coil20.pkl", "pretrained_dscnet/orl.pkl", "pretrained_dscnet/yaleb.pkl",
            "coil20/COIL20.mat", "orl/ORL_32x32.mat", "extended_yaleb/YaleB.mat")
@pytest.mark.realdata
@pytest.mark.parametrize("name,kernels,channels,scale,max_err", [
    ("coil20", (3,), (15,), 1.0, 1e-4), ("orl", (3, 3, 3), (3, 3, 5), 255.0, 0.03),
    ("eyaleb", (5, 3, 3), (10, 20, 30), 255.0, 0.01)])
def test_reference_autoencoders_reconstruct(name, kernels, channels, scale, max_err):
    ds = data.load(name)
    model = models.ConvAutoencoder(ds.x.shape[1:], kernels, channels)
    x = jnp.asarray(ds.x) * scale
    variables = models.load_reference_weights(name)
    err = float(jnp.sum((model.apply(variables, x) - x) ** 2) / jnp.sum(x ** 2))
    assert err < max_err
    # the orientation handling matters: the other kernel orientation reconstructs worse
    spec, upright = models.REFERENCE_WEIGHTS[name]
    other = models.convert_state_dict(models.load_legacy_torch(data.resolve_data_dir() / spec.folder / spec.name),
                                      not upright)
    assert float(jnp.sum((model.apply(other, x) - x) ** 2) / jnp.sum(x ** 2)) > err
