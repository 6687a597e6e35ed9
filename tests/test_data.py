import functools
import gzip
import hashlib
import http.server
import threading

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse

from jaxsc import data
from jaxsc._src.data.files import DataFile, locate
from conftest import needs_data

RNG = np.random.default_rng(0)


def _upright(n, h, w):
    """Random uint8 images with a vertical gradient, so orientation errors change the pixels."""
    return (RNG.integers(0, 50, (n, h, w)) + np.linspace(0, 200, h)[None, :, None]).astype(np.uint8)


def _colmajor(images):
    return images.reshape(images.shape[0], -1, order="F") if images.ndim == 3 else None


def _expected(images):
    return images.astype(np.float32)[..., None] / 255


def test_matlab_images_orientation():
    img = np.arange(6).reshape(2, 3)  # rows r, columns c
    vec = img.reshape(1, -1, order="F")
    np.testing.assert_array_equal(data.matlab_images(vec, 2, 3)[0], img)


def test_fea_gnd_layout(tmp_path):
    images = _upright(6, 32, 32)
    (tmp_path / "orl").mkdir()
    scipy.io.savemat(tmp_path / "orl" / "ORL_32x32.mat", {"fea": _colmajor(images), "gnd": np.arange(1, 7)[:, None]})
    spec = data.DATASETS["orl"].files[0]
    loaded = data.DATASETS["orl"].read([tmp_path / "orl" / spec.name])
    np.testing.assert_allclose(loaded[0], _expected(images))
    np.testing.assert_array_equal(loaded[1], np.arange(6))


def test_umist_layout(tmp_path):
    images = _upright(5, 32, 32)
    path = tmp_path / "umist" / "umist-32-32.mat"
    path.parent.mkdir()
    scipy.io.savemat(path, {"img": _colmajor(images), "label": np.array([[0], [0], [1], [2], [1]])})
    ds = data.load("umist", tmp_path)  # no checksum known: read directly
    assert ds.x.shape == (5, 32, 32, 1) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x, _expected(images))
    np.testing.assert_array_equal(ds.y, [0, 0, 1, 2, 1])


def test_yaleb_cell_array_layout(tmp_path):
    cells = np.empty((2, 2), dtype=object)
    a, b = _upright(3, 48, 42), _upright(2, 48, 42)
    cells[0, 0], cells[0, 1] = np.array(["yaleB01"]), _colmajor(a).T
    cells[1, 0], cells[1, 1] = np.array(["yaleB02"]), _colmajor(b).T
    path = tmp_path / "YaleB.mat"
    scipy.io.savemat(path, {"YaleB": cells, "imSize": np.array([[48, 42]], np.uint8)})
    x, y = data.DATASETS["eyaleb"].read([path])
    np.testing.assert_allclose(x, _expected(np.concatenate([a, b])))
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1])


def test_coil100_subset_layout(tmp_path):
    images = _upright(4, 64, 64)
    path = tmp_path / "c.mat"
    scipy.io.savemat(path, {"DAT": _colmajor(images).T, "labels": np.array([[3, 3, 7, 9]])})
    x, y = data.DATASETS["coil100-subset"].read([path])
    np.testing.assert_allclose(x, _expected(images))
    np.testing.assert_array_equal(y, [0, 0, 1, 2])


def _write_idx(path, array):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def test_idx_and_mnist_1000(tmp_path):
    images = RNG.integers(0, 256, (2100, 28, 28)).astype(np.uint8)
    labels = np.repeat(np.arange(10), 210).astype(np.uint8)
    RNG.shuffle(labels)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    paths = [tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz"]
    x, y = data.DATASETS["mnist-1000"].read(paths)
    assert x.shape == (1000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(y), [100] * 10)
    first_three = np.flatnonzero(labels == 3)[:100]
    np.testing.assert_allclose(x[y == 3][:, :, :, 0], images[first_three] / 255, rtol=1e-6)


def test_mnist_5k_csv(tmp_path):
    table = np.concatenate([RNG.integers(0, 256, (4, 784)), np.array([[0], [1], [1], [9]])], 1)
    path = tmp_path / "m.csv.gz"
    with gzip.open(path, "wt") as fh:
        np.savetxt(fh, table, fmt="%d", delimiter=",")
    x, y = data.DATASETS["mnist-5k"].read([path])
    np.testing.assert_allclose(x[..., 0], table[:, :784].reshape(4, 28, 28) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y, [0, 1, 1, 9])


def test_usps_h5(tmp_path):
    path = tmp_path / "usps" / "usps.h5"
    path.parent.mkdir()
    train, test = RNG.random((5, 256)).astype(np.float32), RNG.random((3, 256)).astype(np.float32)
    with h5py.File(path, "w") as fh:
        fh["train/data"], fh["train/target"] = train, np.arange(5)
        fh["test/data"], fh["test/target"] = test, np.array([9, 8, 7])
    ds = data.load("usps", tmp_path)
    assert ds.x.shape == (8, 16, 16, 1)
    np.testing.assert_allclose(ds.x[..., 0], np.concatenate([train, test]).reshape(8, 16, 16))
    np.testing.assert_array_equal(ds.y, [0, 1, 2, 3, 4, 9, 8, 7])


def test_bbc_layout(tmp_path):
    counts = scipy.sparse.random(7, 4, density=0.5, random_state=0, format="coo") * 5  # terms x docs
    scipy.io.mmwrite(tmp_path / "bbc.mtx", counts)
    (tmp_path / "bbc.classes").write_text("%%Clustering hard\n%Objects\n0 1\n1 0\n2 4\n3 1\n")
    x, y = data.DATASETS["bbc"].read([tmp_path / "bbc.mtx", tmp_path / "bbc.classes"])
    np.testing.assert_allclose(x, counts.toarray().T, rtol=1e-6)
    np.testing.assert_array_equal(y, [1, 0, 4, 1])


def test_digits_needs_no_files(tmp_path):
    ds = data.load("digits", tmp_path)
    assert ds.x.shape == (1797, 8, 8, 1) and ds.x.max() <= 1 and ds.n_clusters == 10


def test_missing_file_names_where_the_data_directory_came_from(tmp_path, monkeypatch):
    spec = DataFile("coil20", "COIL20.mat", "fea 1440 x 1024")
    with pytest.raises(data.DataFileError, match="from the data_dir argument"):
        locate(spec, tmp_path)
    monkeypatch.setenv("JAXSC_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataFileError, match="from JAXSC_DATA_DIR"):
        locate(spec)
    monkeypatch.delenv("JAXSC_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(data.DataFileError, match="from the user cache dir"):
        locate(spec)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'coil21'"):
        data.load("coil21", tmp_path)
    with pytest.raises(data.DataFileError) as info:
        data.load("coil20", tmp_path)
    message = str(info.value)
    assert "COIL20.mat" in message and str(tmp_path) in message and "fea 1440 x 1024" in message
    (tmp_path / "coil20").mkdir()
    (tmp_path / "coil20" / "COIL20.mat").write_bytes(b"not a mat file")
    with pytest.raises(data.DataFileError, match="corrupt or a different file"):
        data.load("coil20", tmp_path)


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSC_DATA_DIR", str(tmp_path / "env"))
    assert data.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("JAXSC_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.resolve_data_dir() == tmp_path / "cache" / "jaxsc"


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_checksum(http_root, tmp_path):
    root, url = http_root
    (root / "toy").mkdir()
    payload = b"some dataset bytes"
    (root / "toy" / "toy.bin").write_bytes(payload)
    spec = DataFile("toy", "toy.bin", "a toy file", hashlib.sha256(payload).hexdigest())
    target = tmp_path / "data"
    path = locate(spec, target, download_missing=True, base_url=url)
    assert path == target / "toy" / "toy.bin" and path.read_bytes() == payload
    bad = DataFile("toy", "toy.bin", "a toy file", "0" * 64)
    with pytest.raises(data.DataFileError, match="corrupt"):
        locate(bad, tmp_path / "other", download_missing=True, base_url=url)
    assert not (tmp_path / "other" / "toy" / "toy.bin").exists()
    with pytest.raises(data.DataFileError, match="could not download"):
        locate(DataFile("toy", "absent.bin", "x", None), tmp_path / "x", download_missing=True, base_url=url)


def test_availability_lists_every_dataset(tmp_path):
    rows = {name: status for name, status, _ in data.availability(tmp_path)}
    assert rows["digits"] == "found" and rows["coil20"] == "missing" and set(rows) == set(data.names())


def _neighbour_correlation(x, axis):
    a = np.take(x, range(x.shape[axis] - 1), axis=axis).ravel()
    b = np.take(x, range(1, x.shape[axis]), axis=axis).ravel()
    return np.corrcoef(a, b)[0, 1]


def _mirror_correlation(x, axis):
    return np.corrcoef(x.ravel(), np.flip(x, axis=axis).ravel())[0, 1]


@needs_data("coil20/COIL20.mat", "orl/ORL_32x32.mat", "extended_yaleb/YaleB.mat",
            "extended_yaleb/YaleB_32x32.mat")
@pytest.mark.realdata
@pytest.mark.parametrize("name,shape,k", [("coil20", (1440, 32, 32, 1), 20), ("orl", (400, 32, 32, 1), 40),
                                          ("eyaleb", (2414, 48, 42, 1), 38), ("eyaleb-32", (2414, 32, 32, 1), 38)])
def test_real_images_look_like_images(name, shape, k):
    ds = data.load(name)
    assert ds.x.shape == shape and ds.x.dtype == np.float32 and 0 <= ds.x.min() and ds.x.max() <= 1
    assert ds.n_clusters == k and set(np.unique(ds.y)) == set(range(k))
    imgs = ds.x[..., 0]
    assert _neighbour_correlation(imgs, 1) > 0.8 and _neighbour_correlation(imgs, 2) > 0.8
    if name != "coil20":  # the mean face is upright: left-right mirror symmetric, not top-bottom
        mean_face = imgs.mean(0)
        assert _mirror_correlation(mean_face, 1) > _mirror_correlation(mean_face, 0) + 0.2


@needs_data("mnist/t10k-images-idx3-ubyte.gz", "mnist/mnist_5k.csv.gz", "bbc/bbc.mtx",
            "coil100_subset/COIL100_64_64.mat")
@pytest.mark.realdata
def test_real_other_datasets():
    for name, n, k in [("mnist-test", 10000, 10), ("mnist-1000", 1000, 10), ("mnist-5k", 5000, 10),
                       ("coil100-subset", 1000, 100), ("bbc", 2225, 5)]:
        ds = data.load(name)
        assert ds.x.shape[0] == n and ds.n_clusters == k and ds.x.dtype == np.float32
    mnist = data.load("mnist-test").x[..., 0]
    # digits are centred: the central rows/columns carry more ink than the borders, in both axes
    assert mnist[:, 10:18, :].mean() > 3 * mnist[:, :4, :].mean()
    assert mnist[:, :, 10:18].mean() > 3 * mnist[:, :, :4].mean()
    assert data.load("bbc").x.shape[1] == 9635
