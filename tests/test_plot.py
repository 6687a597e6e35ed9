"""Figures: what is drawn is checked (block-diagonal sorted affinity, diagonal confusion), and PNGs are written
with non-trivial content."""
import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxsc import cluster, data, plot  # noqa: E402
from jaxsc._src import cli  # noqa: E402


def _clean_problem():
    ds = data.union_of_subspaces(n_subspaces=4, dim=3, ambient_dim=40, n_per_subspace=30, seed=0)
    gram = ds.x @ ds.x.T
    coef = np.linalg.solve(gram + 1e-3 * np.eye(len(gram)), gram)  # least-squares self-expression
    out = cluster.cluster_coefficients(coef, 4, cluster.PostConfig(subspace_dim=3, power=2.0),
                                       jax.random.PRNGKey(0))
    return ds, np.asarray(out.affinity), np.asarray(out.labels)


def _block_mass(matrix, sizes):
    inside, start = 0.0, 0
    for s in sizes:
        inside += np.abs(matrix[start:start + s, start:start + s]).sum()
        start += s
    return inside / np.abs(matrix).sum()


def test_sorted_affinity_of_a_clean_problem_is_block_diagonal(tmp_path):
    ds, affinity, labels = _clean_problem()
    ax = plot.plot_affinity(affinity, ds.y)
    drawn = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(drawn, np.abs(plot.sort_by_label(affinity, ds.y)))
    assert _block_mass(drawn, np.bincount(ds.y)) > 0.95
    assert _block_mass(np.abs(affinity), np.bincount(ds.y)) < 0.5  # unsorted, the blocks are scattered
    path = tmp_path / "affinity.png"
    ax.figure.savefig(path)
    plt.close(ax.figure)
    image = mpimg.imread(path)
    assert image.ndim == 3 and image[..., :3].std() > 0.05


def test_confusion_is_diagonal_after_matching():
    y = np.repeat(np.arange(4), 10)
    pred = (y + 1) % 4  # a perfect clustering with permuted names
    ax = plot.plot_confusion(y, pred)
    drawn = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(drawn, 10 * np.eye(4))
    plt.close(ax.figure)


def test_training_curve_and_embedding_draw_the_data():
    history = [(10, 5.0), (20, 2.0), (30, 1.5)]
    ax = plot.plot_training_curve(history)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [10, 20, 30])
    assert ax.get_yscale() == "log"
    plt.close(ax.figure)
    z = np.random.default_rng(0).standard_normal((25, 6))
    ax = plot.plot_embedding(z, np.arange(25) % 3)
    assert ax.collections[0].get_offsets().shape == (25, 2)
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="history must be"):
        plot.plot_training_curve([])
    with pytest.raises(ValueError, match="does not match 3 labels"):
        plot.sort_by_label(np.zeros((4, 4)), [0, 1, 2])


def test_cli_saves_figures(tmp_path, capsys):
    code = cli.main(["run", "--dataset", "digits", "--seeds", "0", "--set", "pretrain_steps=20",
                     "--set", "finetune_steps=3", "--quiet", "--plots", str(tmp_path)])
    assert code == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == [f"digits-dsc-l2-seed0-{n}.png" for n in ("affinity", "confusion", "embedding", "training")]
    for p in tmp_path.glob("*.png"):
        assert mpimg.imread(p)[..., :3].std() > 0.01
