"""Side-by-side speed: jaxsc against the plain references, ratios measured in one run.

1. Cluster stage at n = 1440 (and any ``--cluster-n``): jaxsc's jitted stage (threshold, SVD affinity,
   spectral clustering with discretisation) against the numpy/scipy/scikit-learn pipeline of
   ``jaxsc._src.testing.reference`` (loop threshold, ``svds``, ``SpectralClustering``), on a C with a clean
   block structure (ridge self-expression of union-of-subspaces data). Compile time is reported separately.
2. DSC fine-tune step at the COIL20 (n=1440, 32x32, 3x3@15) and ORL (n=400, 3x3@3,3,5) shapes: jaxsc's
   jitted step against an eager PyTorch DSC-Net step of the same architecture and loss (written here from the
   paper's description), when torch is installed; otherwise that column says so.

3. Scaling (``--scaling N ...``): the DSC fine-tune step on MNIST-shaped data (28x28, RGRL's MNIST encoder)
   for growing n: step time and XLA's memory plan of the compiled step (arguments + outputs + temporaries, from
   ``compiled.memory_analysis()``), against the bytes of C alone.

For n past ``jaxsc.cluster.LARGE_N`` the cluster stage row also times the iterative solver (randomized SVD, sparse
top-k affinity, LOBPCG) beside the dense one. Writes ``benchmarks/results/speed_<device>.md``.

    python benchmarks/speed.py --cluster-n 1000 1440 5000 10000 --scaling 1000 2000 5000 10000 20000
"""
from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsc import cluster, metrics
from jaxsc._src.testing import reference
from jaxsc.data import union_of_subspaces
from jaxsc.models import ConvAutoencoder
from jaxsc.train import SelfExpressiveObjective, TrainState, init_self_expressive_params, train_step

RESULTS = Path(__file__).parent / "results"


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cluster_case(n: int, repeats: int) -> dict:
    k = 20
    per = n // k
    data = union_of_subspaces(k, 5, 100, per, noise=0.1, seed=0)
    x = data.x.astype(np.float64)
    g = x @ x.T
    coef = np.linalg.solve(g + 0.1 * np.eye(len(x)), g).astype(np.float32)
    post = cluster.PostConfig(threshold=0.04, subspace_dim=12, power=8.0, add_identity=True)
    key = jax.random.PRNGKey(0)
    theirs = best_of(lambda: reference.cluster_reference(coef, k, 0.04, 12, 8.0, True), max(1, repeats // 2))
    ref_labels, _ = reference.cluster_reference(coef, k, 0.04, 12, 8.0, True)
    rows = []
    for solver in ("dense", "iterative") if len(x) > cluster.LARGE_N else ("dense",):
        cfg = post._replace(solver=solver)
        start = time.perf_counter()
        jax.block_until_ready(cluster.cluster_coefficients(coef, k, cfg, key))
        first = time.perf_counter() - start
        ours = best_of(lambda: jax.block_until_ready(cluster.cluster_coefficients(coef, k, cfg, key)), repeats)
        labels = np.asarray(cluster.cluster_coefficients(coef, k, cfg, key).labels)
        rows.append({"n": len(x), "solver": solver, "jaxsc_s": ours, "compile_s": first - ours,
                     "reference_s": theirs, "ratio": theirs / ours, "acc_jaxsc": metrics.accuracy(data.y, labels),
                     "acc_reference": metrics.accuracy(data.y, ref_labels)})
    return rows


def scaling_case(n: int, repeats: int, coef_state_dtype: str | None = None) -> dict:
    """Step time and the compiled step's memory plan for n MNIST-shaped samples (C's Adam state in
    ``coef_state_dtype``)."""
    shape, kernels, channels = (28, 28, 1), (5, 3, 3), (15, 10, 5)
    model = ConvAutoencoder(shape, kernels, channels)
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, *shape))
    params = init_self_expressive_params(model.init(jax.random.PRNGKey(1), x[:2])["params"], n, 1e-8)
    objective = SelfExpressiveObjective(model, 1.0, 1.0, 75.0, coef_state_dtype=coef_state_dtype)
    state = TrainState(params, objective.optimizer().init(params), jnp.zeros((), jnp.int32),
                       jnp.zeros((), jnp.int32), jnp.zeros(()), {k: jnp.zeros(()) for k in ("rec", "reg", "se")})
    key = jax.random.PRNGKey(2)
    compiled = train_step.lower(state, x, key, objective).compile()
    memory = compiled.memory_analysis()
    plan = None if memory is None else (memory.argument_size_in_bytes + memory.output_size_in_bytes
                                        + memory.temp_size_in_bytes)
    state = jax.block_until_ready(train_step(state, x, key, objective))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = jax.block_until_ready(train_step(state, x, key, objective))
        times.append(time.perf_counter() - start)
    return {"n": n, "step_s": min(times), "plan_bytes": plan, "coef_bytes": 4 * n * n,
            "temp_bytes": None if memory is None else memory.temp_size_in_bytes}


def jax_step_time(n, shape, kernels, channels, repeats):
    model = ConvAutoencoder(shape, kernels, channels)
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, *shape))
    params = init_self_expressive_params(model.init(jax.random.PRNGKey(1), x[:2])["params"], n, 1e-8)
    objective = SelfExpressiveObjective(model, 1.0, 1.0, 75.0)
    aux = {k: jnp.zeros(()) for k in ("rec", "reg", "se")}
    state = TrainState(params, objective.optimizer().init(params), jnp.zeros((), jnp.int32),
                       jnp.zeros((), jnp.int32), jnp.zeros(()), aux)
    key = jax.random.PRNGKey(2)
    start = time.perf_counter()
    state = jax.block_until_ready(train_step(state, x, key, objective))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = jax.block_until_ready(train_step(state, x, key, objective))
        times.append(time.perf_counter() - start)
    return min(times), compile_s


def torch_step_time(n, shape, kernels, channels, repeats):
    import torch
    import torch.nn.functional as F

    h, w, cin = shape
    torch.manual_seed(0)
    chans = [cin, *channels]
    enc = [torch.nn.Parameter(torch.randn(co, ci, k, k) * 0.1) for ci, co, k in zip(chans, chans[1:], kernels)]
    enc_b = [torch.nn.Parameter(torch.zeros(co)) for co in channels]
    dec = [torch.nn.Parameter(torch.randn(ci, co, k, k) * 0.1) for ci, co, k in
           zip(chans[::-1], chans[::-1][1:], kernels[::-1])]
    dec_b = [torch.nn.Parameter(torch.zeros(co)) for co in chans[::-1][1:]]
    coef = torch.nn.Parameter(1e-8 * torch.ones(n, n))
    opt = torch.optim.Adam(enc + enc_b + dec + dec_b + [coef], lr=1e-3)
    x = torch.rand(n, cin, h, w)

    def same_pad(t, k):  # TensorFlow SAME for stride 2: extra pixel after
        ih, iw = t.shape[2:]
        ph, pw = max((-(-ih // 2) - 1) * 2 + k - ih, 0), max((-(-iw // 2) - 1) * 2 + k - iw, 0)
        return F.pad(t, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])

    def step():
        sizes, t = [], x
        for wgt, b, k in zip(enc, enc_b, kernels):
            sizes.append(t.shape[2:])
            t = F.relu(F.conv2d(same_pad(t, k), wgt, b, stride=2))
        z = t.reshape(n, -1)
        zc = coef @ z
        t = zc.reshape(t.shape)
        for wgt, b, k, size in zip(dec, dec_b, kernels[::-1], sizes[::-1]):
            full = F.conv_transpose2d(t, wgt, b, stride=2)  # (t - 1) * 2 + k: the padded input size
            top = max((t.shape[2] - 1) * 2 + k - size[0], 0) // 2  # crop the forward conv's SAME padding
            left = max((t.shape[3] - 1) * 2 + k - size[1], 0) // 2
            t = F.relu(full[:, :, top:top + size[0], left:left + size[1]])
        loss = ((t - x) ** 2).sum() + (coef ** 2).sum() + 75.0 * ((z - zc) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    return best_of(step, repeats), torch.__version__, torch.get_num_threads()


def step_case(name, n, shape, kernels, channels, repeats) -> dict:
    ours, compile_s = jax_step_time(n, shape, kernels, channels, repeats)
    row = {"shape": name, "n": n, "jaxsc_s": ours, "compile_s": compile_s}
    try:
        theirs, version, threads = torch_step_time(n, shape, kernels, channels, repeats)
        row.update(torch_s=theirs, ratio=theirs / ours, torch=f"torch {version}, {threads} threads")
    except ImportError:
        row.update(torch_s=None, ratio=None, torch="torch not installed: not measured")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-n", type=int, nargs="+", default=[1440])
    parser.add_argument("--scaling", type=int, nargs="*", default=[], metavar="N")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = jax.devices()[0]
    rows_c = [row for n in args.cluster_n for row in cluster_case(n, args.repeats)]
    rows_s = [step_case("COIL20", 1440, (32, 32, 1), (3,), (15,), args.repeats),
              step_case("ORL", 400, (32, 32, 1), (3, 3, 3), (3, 3, 5), args.repeats)]
    lines = [f"# Speed on {device.platform} ({device.device_kind})", "",
             f"Date {datetime.date.today().isoformat()}, jax {jax.__version__}, {platform.platform()}, "
             f"{platform.processor() or 'unknown CPU'}. Generated by `benchmarks/speed.py`; both sides measured in "
             "the same run, best of the repeats, compile time excluded (shown separately).", "",
             "## Cluster stage (threshold 0.04, subspace_dim 12, power 8, discretize; K = 20)", "",
             "| n | solver | jaxsc s | compile s | reference s | speed-up | ACC jaxsc | ACC reference |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows_c:
        lines.append(f"| {r['n']} | {r['solver']} | {r['jaxsc_s']:.3f} | {r['compile_s']:.2f} | "
                     f"{r['reference_s']:.3f} | {r['ratio']:.1f}x | {r['acc_jaxsc']:.4f} | {r['acc_reference']:.4f} |")
    lines += ["", "## DSC fine-tune step (full batch, Adam, loss rec + reg + 75 se)", "",
              "| shape | n | jaxsc s/step | compile s | PyTorch s/step | speed-up | PyTorch |", "|---|---|---|---|---|---|---|"]
    for r in rows_s:
        torch_s = f"{r['torch_s']:.3f}" if r["torch_s"] is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        lines.append(f"| {r['shape']} | {r['n']} | {r['jaxsc_s']:.3f} | {r['compile_s']:.2f} | {torch_s} | {ratio} | "
                     f"{r['torch']} |")
    if args.scaling:
        gib = 2.0 ** 30
        lines += ["", "## Scaling: DSC fine-tune step on MNIST-shaped data (28x28, 5x5@15, 3x3@10, 3x3@5)", "",
                  "XLA's plan for the compiled step: arguments (parameters, Adam state, data) + outputs + temporaries "
                  "(outputs alias the donated arguments). `C state`: dtype of C's Adam moments.",
                  "", "| n | C state | s/step | plan GiB | temporaries GiB | C alone GiB |", "|---|---|---|---|---|---|"]
        for n in args.scaling:
            for dtype in (None, "bfloat16"):
                r = scaling_case(n, max(2, args.repeats // 2), dtype)
                plan = "-" if r["plan_bytes"] is None else f"{r['plan_bytes'] / gib:.2f}"
                temp = "-" if r["temp_bytes"] is None else f"{r['temp_bytes'] / gib:.2f}"
                lines.append(f"| {n} | {dtype or 'float32'} | {r['step_s']:.3f} | {plan} | {temp} | "
                             f"{r['coef_bytes'] / gib:.2f} |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"speed_{device.platform}.md").write_text(text)


if __name__ == "__main__":
    main()
