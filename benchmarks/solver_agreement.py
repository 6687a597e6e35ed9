"""The cluster stage's randomized solver against its dense one, on trained C and on the speed benchmark's C.

Why the dense solver stays the default below ``jaxsc.cluster.LARGE_N`` (issue 2 / 6: the randomized one is the
only path 5x faster than the reference pipeline at n = 1440 on 2 CPU cores). For each C the script prints, label
free: the spectrum of S (:func:`jaxsc.cluster.svd_operator`, the preset's threshold applied first) at the cut
r = subspace_dim K + 1 (|lambda|_r and |lambda|_r+1 in decreasing order of |lambda|: no gap there means that the
top-r subspace is ill-determined), the same cut K of the spectral embedding's matrix (:func:`embedding_cut`),
and per key the largest and median residual ||S u - lambda u|| / max |lambda|
over the r vectors of the randomized top subspace the stage computes (same key, same power steps), and the
agreement (ARI) of its labels with the dense solver's. For scale, the dense solver's own sensitivity to rounding: the
ARI between its labels from C in float32 (the default) and from the same C in float64 (``jax.enable_x64``), same
key. ACC against the ground truth comes last, for the reader: nothing was chosen from it.

The trained C: dsc-l2's preset fine-tuned from DSC-Net's pretrained autoencoder (``--datasets``, default coil20 and
orl; deterministic on one machine); ``synthetic``: the speed benchmark's ridge C of 20 subspaces
(``speed.synthetic_coefficients``) with its post settings, at ``--synthetic-n`` (default 400 and 1440). Writes
``benchmarks/results/solver_agreement.md``.

    JAXSC_DATA_DIR=../shared/datasets python benchmarks/solver_agreement.py
"""
from __future__ import annotations

import argparse
import datetime

import jax
import jax.numpy as jnp
import numpy as np
from _tables import RESULTS, machine_text
from sklearn.metrics import adjusted_rand_score
from speed import CLUSTER_K, CLUSTER_POST, synthetic_coefficients

import jaxsc
from jaxsc import cluster, data, metrics
from jaxsc._src.cli import _machine
from jaxsc._src.cluster.pipeline import subspace_key
from jaxsc.models import load_reference_weights


def trained_coefficients(name: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, cluster.PostConfig]:
    """``(C, labels, post)``: dsc-l2's preset of ``name`` fine-tuned from DSC-Net's pretrained autoencoder."""
    dataset = data.load(name, data_dir=data_dir)
    preset = jaxsc.presets.get_preset(name, dataset.x.shape[1:], "dsc-l2")
    weights = load_reference_weights(name, data_dir)["params"]
    fitted = jaxsc.fit(dataset.x, preset, weights, verbose=False)
    return np.asarray(fitted.coef), dataset.y, preset.post


def embedding_cut(affinity: jax.Array, k: int) -> tuple[float, float]:
    """The K-th and (K+1)-th largest eigenvalues of the normalised affinity D^-1/2 W D^-1/2 (diagonal of W
    ignored), whose top K eigenvectors are the spectral embedding."""
    w = np.asarray(affinity, np.float64)
    np.fill_diagonal(w, 0.0)
    scale = 1.0 / np.sqrt(np.maximum(w.sum(axis=1), np.finfo(np.float64).tiny))
    values = np.linalg.eigvalsh(w * scale[:, None] * scale[None, :])[::-1]
    return float(values[k - 1]), float(values[k])


def agreement_rows(name: str, coef: np.ndarray, labels: np.ndarray, post: cluster.PostConfig, keys: int) -> list:
    k = int(labels.max()) + 1
    coef = jnp.asarray(coef)
    sym = cluster.svd_operator(cluster.threshold_coefficients(coef, post.threshold), post.add_identity)
    rank = cluster.svd_rank(sym.shape[0], k, post.subspace_dim)
    magnitudes = np.sort(np.abs(np.asarray(jnp.linalg.eigvalsh(sym))))[::-1]
    embedding = embedding_cut(cluster.svd_affinity(cluster.threshold_coefficients(coef, post.threshold), k,
                                                   post.subspace_dim, post.power, post.add_identity), k)
    dense_post = post._replace(solver="dense")
    rows = []
    for seed in range(keys):
        key = jax.random.PRNGKey(seed)
        dense = np.asarray(cluster.cluster_coefficients(coef, k, dense_post, key).labels)
        with jax.enable_x64(True):
            double = np.asarray(cluster.cluster_coefficients(jnp.asarray(coef, jnp.float64), k, dense_post, key).labels)
        u, _ = cluster.top_singular_subspace(sym, rank, "randomized", subspace_key(key))
        image = sym @ u
        values = jnp.sum(u * image, axis=0)
        residual = np.asarray(jnp.linalg.norm(image - u * values, axis=0) / jnp.max(jnp.abs(values)))
        fast = np.asarray(cluster.cluster_coefficients(coef, k, post._replace(solver="randomized"), key).labels)
        rows.append({"C": name, "n": len(labels), "r": rank, "at_cut": (magnitudes[rank - 1], magnitudes[rank]),
                     "embedding_cut": embedding, "key": seed, "max_residual": float(residual.max()),
                     "median_residual": float(np.median(residual)), "ari": adjusted_rand_score(dense, fast),
                     "ari_double": adjusted_rand_score(dense, double),
                     "acc_randomized": metrics.accuracy(labels, fast), "acc_dense": metrics.accuracy(labels, dense)})
        print(rows[-1], flush=True)
    return rows


def write_table(rows: list) -> str:
    lines = ["# Randomized against dense cluster-stage solver", "",
             f"Generated by `benchmarks/solver_agreement.py` on {datetime.date.today().isoformat()}, "
             f"{machine_text(_machine())}. See the script's docstring. `|lambda|_r, _r+1`: the r-th and (r+1)-th "
             "largest |eigenvalue| of S, the cut of the top-r subspace. `lambda_K, _K+1 of M`: the same at the cut "
             "of the spectral embedding (normalised dense affinity): where they are close, the iterative embedding "
             "fails its Davis-Kahan test (`jaxsc.cluster.top_eigenpairs`, since 2026-12-07) and eigh answers. "
             "Residuals: ||S u - lambda u|| / max |lambda| "
             "over the randomized solver's r vectors (largest, median); the dense solver's are at rounding level. "
             "`ARI to dense`: agreement of the two solvers' labels (same key for the rest of the stage). `dense "
             "f32 to f64`: the ARI between the dense solver's labels from C in float32 and in float64 (same key), "
             "its own sensitivity to rounding. ACC: for the reader.", "",
             "| C | n | r | \\|lambda\\|_r, _r+1 | lambda_K, _K+1 of M | key | largest residual | median residual | "
             "ARI to dense | dense f32 to f64 | ACC randomized | ACC dense |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['C']} | {r['n']} | {r['r']} | {r['at_cut'][0]:.5g}, {r['at_cut'][1]:.5g} | "
                     f"{r['embedding_cut'][0]:.5g}, {r['embedding_cut'][1]:.5g} | {r['key']} | "
                     f"{r['max_residual']:.1e} | {r['median_residual']:.1e} | {r['ari']:.3f} | "
                     f"{r['ari_double']:.3f} | "
                     f"{r['acc_randomized']:.4f} | {r['acc_dense']:.4f} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "solver_agreement.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["coil20", "orl"])
    parser.add_argument("--keys", type=int, default=3, help="keys of the randomized solver per C")
    parser.add_argument("--synthetic-n", type=int, nargs="+", default=[400, 1440])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        coef, labels, post = trained_coefficients(name, args.data_dir)
        rows += agreement_rows(f"{name} (dsc-l2 from DSC-Net's weights)", coef, labels, post, args.keys)
    for n in args.synthetic_n:
        coef, labels = synthetic_coefficients(n)
        assert int(labels.max()) + 1 == CLUSTER_K
        rows += agreement_rows("synthetic (speed benchmark)", coef, labels, CLUSTER_POST, args.keys)
    print(write_table(rows))


if __name__ == "__main__":
    main()
