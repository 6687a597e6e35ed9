"""Side-by-side speed: jaxsc against the plain references, ratios measured in one run.

1. Cluster stage at n = 1440 (and any ``--cluster-n``): jaxsc's jitted stage (threshold, SVD affinity,
   spectral clustering with discretisation) against the numpy/scipy/scikit-learn pipeline of
   ``jaxsc._src.testing.reference`` (loop threshold, ``svds``, ``SpectralClustering``), on a C with a clean
   block structure (ridge self-expression of union-of-subspaces data). Compile time is reported separately.
2. DSC fine-tune step and whole fit (fine-tune epochs + cluster stage) at the COIL20 (n=1440, 32x32, 3x3@15)
   and ORL (n=400, 3x3@3,3,5) settings: jaxsc against the PyTorch DSC-Net port (github.com/XifengGuo/DSC-Net),
   imported from a checkout outside this repo (``--dscnet-port PATH``) and run as published; without it (or
   without torch) those columns say so. Steps are timed in blocks of consecutive steps (``STEP_BLOCK_S``).
3. Convolutions (``--sections conv``): per layer shape (DSC-Net's ORL, COIL20 and EYaleB encoders, RGRL's
   MNIST encoder, the LRSC teacher), jaxsc's forward convolution and patch-matrix kernel gradient
   (``jaxsc.models.same_conv``) against lax's convolution and its autodiff; per decoder layer, jaxsc's
   transposed convolution (phase form) against lax's linear transpose; and the gradient of whole autoencoders
   with jaxsc's convolutions and with those it had before 2026-12-05.
   ``--sections products``: the step's three n x n by n x d products alone, XLA against torch.
4. Scaling (``--scaling N ...``): the DSC fine-tune step on MNIST-shaped data (28x28, RGRL's MNIST encoder)
   for growing n: step time and the peak of XLA's memory plan for the compiled step (arguments + outputs - aliased
   outputs + temporaries, from ``compiled.memory_analysis()``), against the bytes of C alone.
5. Dense C at large n (``--large N ...``): DSC-L2 end to end (pretraining, full-batch fine-tune with the dense
   n x n C, the cluster stage, which takes its iterative solver past ``jaxsc.cluster.LARGE_N``) on n MNIST-shaped
   samples of a union of subspaces, each stage timed to its finished result, with the peak memory and the
   accuracy on the subspace labels, from each start of C (``LARGE_STARTS``: constant; constant with C's rate,
   or C's and the network's, scaled to n; ridge). C's Adam
   moments are float32 where ``jaxsc.fit``'s memory check passes, else bfloat16 (the issue's n = 70,000 on one
   80 GB GPU needs them).
6. LRSC distillation (``--sections distill``): the full-batch LRSC fine-tune step (distillation + InfoNCE) on
   MNIST-shaped data with the teacher's heat kernel W recomputed in every step from the features (as before
   2026-11-24) against W computed once and passed in (what ``fit_lrsc`` does now), at the mnist-0-4 protocol's n.
7. PSSC's pseudo-graph (``--sections pseudo_graph``): the contrastive term with its gradient, jaxsc's blocked
   custom VJP against autodiff of the whole n x n expression (``jaxsc._src.testing.reference``), time and the
   temporaries of XLA's plan.
8. RGRL's relation-weighted reconstruction (``--sections laplacian``): the term with its gradient, jaxsc's
   Gram-matrix custom VJP against autodiff of W X_hat (``jaxsc._src.testing.reference``), time and temporaries.

The cluster stage is timed with the solvers ``dense`` (eigh) and ``randomized`` (randomized top subspace, Chebyshev-
filtered embedding), and past ``jaxsc.cluster.LARGE_N`` also ``iterative`` (sparse top-k affinity). Writes
``benchmarks/results/speed_<device>.md``; ``--sections`` re-measures some sections and keeps the others (each is dated).

    python benchmarks/speed.py --dscnet-port ../DSC-Net --cluster-n 1000 1440 5000 10000 \\
        --scaling 1000 2000 5000 10000 20000
    python benchmarks/speed.py --sections large --large 5000 20000 70000
    python benchmarks/speed.py --sections pseudo_graph laplacian
"""
from __future__ import annotations

import argparse
import datetime
import math
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Callable
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

import jaxsc
from jaxsc import cluster, metrics
from jaxsc._src.api import build_objective
from jaxsc._src.machine import cpu_description
from jaxsc._src.methods.lrsc import target_teacher_weights
from jaxsc._src.testing import reference
from jaxsc.data import union_of_subspaces
from jaxsc.models import ConvAutoencoder, same_conv, same_conv_transpose
from jaxsc._src.models import conv as conv_module
from jaxsc._src.models.autoencoders import encoder_text
from jaxsc._src.models.conv import uses_direct_sum, uses_patch_forward, uses_patch_gradient
from jaxsc.presets import get_preset
from jaxsc._src.train.memory import plan_from_compiled
from jaxsc.train import SelfExpressiveObjective, TrainState, init_self_expressive_params, train_step

RESULTS = Path(__file__).parent / "results"


def best_of(fn, repeats: int):
    """``(best seconds, last result)`` of ``repeats`` calls of ``fn``."""
    return interleaved_best({"fn": fn}, repeats)["fn"]


def interleaved_best(fns: dict, repeats: int, rounds: dict | None = None, settle_s: float = 0.0) -> dict:
    """``{name: (best seconds, last result)}`` of calls of the functions in ``fns``, taken in turn round by round
    (``repeats`` rounds; ``rounds[name]`` caps how many of them ``name`` takes part in), so that every side
    meets the same state of a noisy machine instead of one side getting its quiet minute. Each call starts
    ``settle_s`` seconds after the previous one ended."""
    rounds = rounds or {}
    times, outs = {name: [] for name in fns}, {}
    for i in range(repeats):
        for name, fn in fns.items():
            if i < rounds.get(name, repeats):
                time.sleep(settle_s)
                start = time.perf_counter()
                outs[name] = fn()
                times[name].append(time.perf_counter() - start)
    return {name: (min(times[name]), outs[name]) for name in fns}


# Post settings matched to the synthetic data (subspaces of dimension 5): with COIL20's (threshold 0.04,
# subspace_dim 12, i.e. 241 singular vectors of a rank-100 signal) both pipelines returned near-random
# partitions at n = 1000 (reference 0.50, jaxsc 0.10), the extra vectors being an arbitrary basis of a degenerate
# bulk of the spectrum.
CLUSTER_POST = cluster.PostConfig(threshold=0.2, subspace_dim=5, power=4.0, add_identity=True)
# Pause before each timed call of the cluster stage. After a multi-threaded call, OpenBLAS's worker threads keep
# spinning for about 0.2 s (measured on 2 cores: jaxsc's randomized stage at n = 1440 took 0.138 s right after a
# reference call, 0.118 s 0.05 s later and 0.090-0.093 s 0.2 s or more later; the reference 0.53-0.63 s in all
# cases), so without it one side's idle threads run into the other side's time.
SETTLE_S = 0.25


CLUSTER_K = 20


def synthetic_coefficients(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(C, labels)``: the ridge self-expression C = (X X^T + 0.1 I)^-1 X X^T, float32, of n points on
    ``CLUSTER_K`` subspaces of dimension 5 in R^100 (noise 0.1, seed 0), and the points' subspaces."""
    data = union_of_subspaces(CLUSTER_K, 5, 100, n // CLUSTER_K, noise=0.1, seed=0)
    x = data.x.astype(np.float64)
    g = x @ x.T
    return np.linalg.solve(g + 0.1 * np.eye(len(x)), g).astype(np.float32), data.y


def cluster_case(n: int, repeats: int, dense_max_n: int = 10 ** 9) -> list:
    """The cluster stage at ``n`` (:func:`synthetic_coefficients`), jaxsc (solvers dense up to ``dense_max_n``,
    randomized, and iterative past ``LARGE_N``) against the reference pipeline."""
    k, post = CLUSTER_K, CLUSTER_POST
    coef, labels = synthetic_coefficients(n)
    n, key = len(labels), jax.random.PRNGKey(0)  # n // CLUSTER_K points per subspace
    coef_device = jax.device_put(coef)  # jaxsc's stage gets C where training leaves it: on the device
    dense = ("dense",) if n <= dense_max_n else ()
    solvers = dense + ("randomized",) + (("iterative",) if n > cluster.LARGE_N else ())
    fns = {"reference": lambda: reference.cluster_reference(coef, k, post.threshold, post.subspace_dim, post.power,
                                                            post.add_identity)}
    first_s = {}
    for solver in solvers:
        cfg = post._replace(solver=solver)
        fns[solver] = lambda cfg=cfg: jax.block_until_ready(cluster.cluster_coefficients(coef_device, k, cfg, key))
        first_s[solver] = best_of(fns[solver], 1)[0]  # compiles
    # the same number of repeats on both sides up to n = 2000; past it the reference (a minute a call at 10000)
    # takes part in half of the rounds
    best = interleaved_best(fns, repeats, {"reference": repeats if n <= 2000 else max(1, repeats // 2)}, SETTLE_S)
    theirs, (ref_labels, _) = best["reference"]
    rows = []
    for solver in solvers:
        ours, out = best[solver]
        rows.append({"n": n, "solver": solver, "jaxsc_s": ours, "compile_s": first_s[solver] - ours,
                     "reference_s": theirs, "ratio": theirs / ours,
                     "acc_jaxsc": metrics.accuracy(labels, np.asarray(out.labels)),
                     "acc_reference": metrics.accuracy(labels, ref_labels)})
    return rows


def dsc_step_problem(n, shape, kernels, channels, w_reg=1.0, w_se=75.0, coef_state_dtype=None, matmul_dtype=None):
    """``(state, x, key, objective)`` for a DSC fine-tune step on ``n`` random samples of ``shape``."""
    model = ConvAutoencoder(shape, kernels, channels)
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, *shape))
    params = init_self_expressive_params(model.init(jax.random.PRNGKey(1), x[:2])["params"], n, 1e-8)
    objective = SelfExpressiveObjective(model, 1.0, w_reg, w_se, coef_state_dtype=coef_state_dtype,
                                        matmul_dtype=matmul_dtype)
    state = TrainState(params, objective.optimizer().init(params), jnp.zeros((), jnp.int32),
                       jnp.zeros((), jnp.int32), jnp.zeros(()), {k: jnp.zeros(()) for k in ("rec", "reg", "se")})
    return state, x, jax.random.PRNGKey(2), objective


def jax_stepper(state, x, key, objective):
    """``(step, first call seconds)``: ``step()`` runs one jitted fine-tune step on a state it holds (donated
    and replaced each call); the first call, made here, compiles."""
    held = [state]

    def step():
        held[0] = jax.block_until_ready(train_step(held[0], x, key, objective))

    start = time.perf_counter()
    step()
    return step, time.perf_counter() - start


def scaling_case(n: int, repeats: int, coef_state_dtype: str | None = None) -> dict:
    """Step time and the compiled step's memory plan for n MNIST-shaped samples (C's Adam state in
    ``coef_state_dtype``)."""
    state, x, key, objective = dsc_step_problem(n, (28, 28, 1), (5, 3, 3), (15, 10, 5),
                                                coef_state_dtype=coef_state_dtype)
    plan = plan_from_compiled(train_step.lower(state, x, key, objective).compile(), 0, jax.devices()[0], None)
    step_s, _ = best_of(jax_stepper(state, x, key, objective)[0], repeats)
    analysed = plan.argument_bytes + plan.temp_bytes > 0  # 0: the backend gave no analysis
    return {"n": n, "step_s": step_s, "peak_bytes": plan.peak_bytes if analysed else None, "coef_bytes": 4 * n * n,
            "temp_bytes": plan.temp_bytes if analysed else None}


def load_port(path: Path):
    """The PyTorch DSC-Net port (github.com/XifengGuo/DSC-Net) from a checkout at ``path``, run as published:
    its ``main`` module (``DSCNet``, ``loss_fn``) and ``post_clustering.spectral_clustering``."""
    if not (path / "main.py").is_file() or not (path / "post_clustering.py").is_file():
        raise FileNotFoundError(f"no DSC-Net checkout at {path} (expected main.py and post_clustering.py); clone "
                                "https://github.com/XifengGuo/DSC-Net outside this repository and pass --dscnet-port")
    sys.path.insert(0, str(path))
    import main as port_main  # noqa: E402  (the checkout's module)
    import post_clustering as port_post
    return port_main, port_post


def port_stepper(port, case: dict):
    """``(step, fit, description)``: the port's fine-tune step as ``step()`` (its DSCNet and loss_fn, Adam 1e-3 as
    its ``train``), called once here; its whole fit, the case's epochs plus one call of its cluster stage
    (which, as published, fits SpectralClustering twice); and the torch version and threads."""
    import torch

    port_main, port_post = port
    h, w, cin = case["shape"]
    device, sync, described = torch_side(torch)
    torch.manual_seed(0)
    net = port_main.DSCNet(channels=[cin, *case["channels"]], kernels=list(case["kernels"]),
                           num_sample=case["n"]).to(device)
    x = torch.rand(case["n"], cin, h, w).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        x_recon, z, z_recon = net(x)
        loss = net.loss_fn(x, x_recon, z, z_recon, weight_coef=case["w_reg"], weight_selfExp=case["w_se"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()

    def fit():
        for _ in range(case["epochs"]):
            step()
        coef = net.self_expression.Coefficient.detach().cpu().numpy()
        post = case["post"]
        port_post.spectral_clustering(coef, case["k"], post.subspace_dim, post.threshold, post.power)

    step()
    return step, fit, described


def torch_side(torch) -> tuple[str, Callable[[], None], str]:
    """``(device, sync, description)`` of the PyTorch side: on the GPU when jax runs on one (both sides on the
    same kind of device; ``sync`` waits for its queued work, as ``block_until_ready`` on the jax side), else on
    the CPU."""
    if jax.default_backend() == "gpu" and torch.cuda.is_available():
        return "cuda", torch.cuda.synchronize, f"torch {torch.__version__}, {torch.cuda.get_device_name()}"
    return "cpu", lambda: None, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def jax_fit_time(case: dict) -> float:
    """jaxsc's fine-tune (the preset's steps, equal to the port's epochs) plus its cluster stage, compilation
    included, from a freshly initialised autoencoder (the port has no pretraining: it loads weights)."""
    preset = get_preset(case["preset"], case["shape"])
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (case["n"], *case["shape"])))
    init = ConvAutoencoder(case["shape"], case["kernels"], case["channels"]).init(
        jax.random.PRNGKey(1), jnp.asarray(x[:2]))["params"]
    start = time.perf_counter()
    jaxsc.run(x, case["k"], preset, autoencoder_params=init, verbose=False)
    return time.perf_counter() - start


STEP_CASES = {  # the port's settings for these datasets (its main.py), equal to jaxsc's DSC presets
    "COIL20": dict(preset="coil20", n=1440, k=20, shape=(32, 32, 1), kernels=(3,), channels=(15,), w_reg=1.0,
                   w_se=75.0, epochs=40),
    "ORL": dict(preset="orl", n=400, k=40, shape=(32, 32, 1), kernels=(3, 3, 3), channels=(3, 3, 5), w_reg=2.0,
                w_se=0.2, epochs=700),
}


# Each side's turn in the step section is a block of consecutive steps lasting about this long, timed as a whole:
# the steady state of a training loop. Timed one step a turn, each side's first step after the other's met the
# other's idle worker threads still spinning (torch's OpenMP, XLA's pool) and its own asleep: on 2 cores
# (2026-12-06, AMD EPYC) jaxsc's ORL step took 8.1 ms alone in a loop, 10.5-12.1 ms timed one a turn, 9.0-10.1 ms
# in blocks of 20 (torch's 11.2, 11.6-13.2 and 11.8-15.2 ms).
STEP_BLOCK_S = 0.2


def consecutive(step: Callable[[], object], count: int) -> Callable[[], object]:
    """``step`` called ``count`` times in a row, as one call."""
    def block():
        for _ in range(count):
            out = step()
        return out
    return block


def step_case(name: str, port, repeats: int) -> dict:
    """The case's fine-tune step, jaxsc and (with ``port``) the PyTorch port taking turns round by round, and
    the whole fit of each side."""
    case = STEP_CASES[name]
    preset = get_preset(case["preset"], case["shape"])
    assert (preset.kernels, preset.channels, preset.w_reg, preset.w_se, preset.finetune_steps) == (
        case["kernels"], case["channels"], case["w_reg"], case["w_se"], case["epochs"]), name
    case = {**case, "post": preset.post}
    problem = (case["n"], case["shape"], case["kernels"], case["channels"], case["w_reg"], case["w_se"])
    ours, first = jax_stepper(*dsc_step_problem(*problem))
    steps = {"jaxsc": ours, "jaxsc-bf16": jax_stepper(*dsc_step_problem(*problem, matmul_dtype="bfloat16"))[0]}
    if port is not None:
        steps["torch"], port_fit, port_name = port_stepper(port, case)
    block = max(1, math.ceil(STEP_BLOCK_S / best_of(ours, 1)[0]))
    best = interleaved_best({side: consecutive(step, block) for side, step in steps.items()}, repeats)
    per_step = {side: seconds / block for side, (seconds, _) in best.items()}
    row = {"shape": name, "n": case["n"], "epochs": case["epochs"], "block": block, "jaxsc_s": per_step["jaxsc"],
           "jaxsc_bf16_s": per_step["jaxsc-bf16"],
           "compile_s": first - per_step["jaxsc"], "jaxsc_fit_s": jax_fit_time(case), "torch_s": None,
           "torch_fit_s": None}
    if port is None:
        row["torch"] = "not measured: no --dscnet-port checkout or no torch"
    else:
        row.update(torch_s=per_step["torch"], torch_fit_s=best_of(port_fit, 1)[0], torch=port_name)
    return row


SECTIONS = ("cluster", "step", "products", "conv", "scaling", "large", "distill", "pseudo_graph",
            "laplacian")


def table_head(columns: list[str]) -> list[str]:
    """A markdown table's header and rule for ``columns``."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def machine_description() -> str:
    """The device a section ran on: the CPU (:func:`jaxsc._src.machine.cpu_description`: the float32 and bfloat16
    ratios against torch change with it), else the accelerator's kind."""
    device = jax.devices()[0]
    return cpu_description() if device.platform == "cpu" else f"{device.device_kind} ({device.platform})"


def section_head(title: str, text: str, columns: list[str]) -> list[str]:
    """A result section's first lines: ``## title``, "Measured <today> on <machine>." and ``text``, and
    ``columns``' table head."""
    return [f"## {title}", "", f"Measured {datetime.date.today().isoformat()} on {machine_description()}. {text}",
            "", *table_head(columns)]


def cluster_section(rows: list, dense_max_n: int) -> list[str]:
    lines = section_head(
        f"Cluster stage (threshold {CLUSTER_POST.threshold}, subspace_dim {CLUSTER_POST.subspace_dim}, "
        f"power {CLUSTER_POST.power:g}, C - diag(C) + I, discretize; K = 20 subspaces of dimension 5)",
        "`randomized`: randomized top subspace and a "
        "Chebyshev-filtered embedding; `iterative`: also a sparse top-k affinity. Both run with one BLAS "
        "thread on the CPU (`jaxsc/_src/cluster/blas_threads.py`); the reference with the BLAS libraries' "
        "default threads. Each timed call starts "
        f"{SETTLE_S:g} s after the previous one ended (OpenBLAS's idle threads spin for about 0.2 s after a "
        "call: `SETTLE_S` in `benchmarks/speed.py`). The reference takes part in half of the rounds past "
        "n = 2000."
        + (f" The dense solver was not timed past n = {dense_max_n} (`--dense-max-n`)."
           if any(r["n"] > dense_max_n for r in rows) else ""),
        ["n", "solver", "jaxsc s", "compile s", "reference s", "speed-up", "ACC jaxsc", "ACC reference"])
    for r in rows:
        lines.append(f"| {r['n']} | {r['solver']} | {r['jaxsc_s']:.3f} | {r['compile_s']:.2f} | "
                     f"{r['reference_s']:.3f} | {r['ratio']:.1f}x | {r['acc_jaxsc']:.4f} | {r['acc_reference']:.4f} |")
    return lines


def products_case(name: str, repeats: int) -> dict:
    """The three n x n by n x d products of a DSC step at the case's shape (C Z, its gradient with respect to C,
    dZc Z^T, and with respect to Z, C^T dZc), each jitted alone in float32, against torch's (2 threads as the
    port), taking turns; ``None`` on the torch side without torch."""
    case = STEP_CASES[name]
    model = ConvAutoencoder(case["shape"], case["kernels"], case["channels"])
    latent = jax.eval_shape(lambda v: model.init_with_output(jax.random.PRNGKey(0), v, method="encode")[0],
                            jax.ShapeDtypeStruct((1, *case["shape"]), jnp.float32))
    n, d = case["n"], int(np.prod(latent.shape[1:]))
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    coef, z, grad = (jax.random.normal(keys[0], (n, n)), jax.random.normal(keys[1], (n, d)),
                     jax.random.normal(keys[2], (n, d)))
    forms = {"C Z": (lambda c, z, g: c @ z), "dZc Z^T": (lambda c, z, g: g @ z.T),
             "C^T dZc": (lambda c, z, g: c.T @ g)}
    try:
        import torch
        torch.set_num_threads(2)
        device, sync, described = torch_side(torch)
        tensors = [torch.from_numpy(np.asarray(a)).to(device) for a in (coef, z, grad)]
    except ImportError:
        torch, described = None, "torch not installed"
    rows = []
    for form, fn in forms.items():
        jitted = jax.jit(fn)
        sides = {"xla": lambda: jax.block_until_ready(jitted(coef, z, grad))}
        if torch is not None:
            sides["torch"] = lambda fn=fn: (fn(*tensors), sync())
        for side in sides.values():
            side()
        best = interleaved_best(sides, repeats)
        rows.append({"shape": name, "n": n, "d": d, "form": form, "xla_s": best["xla"][0],
                     "torch_s": best["torch"][0] if torch is not None else None, "torch": described})
    return rows


def products_section(rows: list) -> list[str]:
    lines = section_head(
        "C Z products alone: XLA against torch",
        "The three products of a DSC step whose cost grows as "
        "n^2 d (the forward C Z and its two gradient products), each on its own, float32, XLA (jitted) "
        "against torch (its device and threads in the last column), taking turns. At COIL20's shape they are "
        "most of the step (a profile of jaxsc's COIL20 step on 2026-12-06, on a CPU with avx512f but not "
        "avx512_bf16: the three took about 121 of 193 ms), so the float32 step ratio of the step section follows "
        "from these; at ORL's (d = 80) they are a "
        "small part of it.",
        ["shape", "n", "d", "product", "XLA s", "torch s", "XLA speed-up", "PyTorch"])
    for r in rows:
        measured = r["torch_s"] is not None
        lines.append(f"| {r['shape']} | {r['n']} | {r['d']} | {r['form']} | {r['xla_s']:.4f} | "
                     + (f"{r['torch_s']:.4f} | {r['torch_s'] / r['xla_s']:.2f}x | " if measured else "- | - | ")
                     + f"{r['torch']} |")
    return lines


def step_section(rows: list) -> list[str]:
    lines = section_head(
        "DSC fine-tune step and whole fit against the PyTorch DSC-Net port",
        "The port (github.com/XifengGuo/DSC-Net, run from a "
        "checkout outside this repo, its model, loss and cluster stage as published) against jaxsc with the same "
        "architecture, loss weights, n and epochs. Steps are timed in blocks of `block` consecutive steps (about "
        f"{STEP_BLOCK_S:g} s; `STEP_BLOCK_S` in `benchmarks/speed.py`), each side taking its turn with a block, as "
        "in a training loop. Whole fit: fine-tune epochs + cluster stage, from a fresh "
        "network on random data (pretraining excluded on both sides: the port has none), jaxsc's compilation "
        "included. `bf16`: jaxsc's step with C Z and its two gradient products in bfloat16 with float32 sums "
        "(`matmul_dtype=\"bfloat16\"`; its accuracy: `rgrl_pssc.md`), against the port in float32.",
        ["shape", "n", "epochs", "block", "jaxsc s/step", "compile s", "port s/step", "step speed-up", "bf16 s/step",
         "bf16 speed-up", "jaxsc fit s", "port fit s", "fit speed-up", "PyTorch"])
    for r in rows:
        measured = r["torch_s"] is not None
        lines.append(f"| {r['shape']} | {r['n']} | {r['epochs']} | {r['block']} | {r['jaxsc_s']:.4f} | "
                     f"{r['compile_s']:.2f} | "
                     + (f"{r['torch_s']:.4f} | {r['torch_s'] / r['jaxsc_s']:.2f}x | {r['jaxsc_bf16_s']:.4f} | "
                        f"{r['torch_s'] / r['jaxsc_bf16_s']:.2f}x | {r['jaxsc_fit_s']:.1f} | "
                        f"{r['torch_fit_s']:.1f} | {r['torch_fit_s'] / r['jaxsc_fit_s']:.2f}x | " if measured else
                        f"- | - | {r['jaxsc_bf16_s']:.4f} | - | {r['jaxsc_fit_s']:.1f} | - | - | ") + f"{r['torch']} |")
    return lines


def scaling_section(sizes: list, repeats: int) -> list[str]:
    gib = 2.0 ** 30
    lines = section_head(
        "Scaling: DSC fine-tune step on MNIST-shaped data (28x28, 5x5@15, 3x3@10, 3x3@5)",
        "`peak`: XLA's plan for the compiled step, arguments (parameters, Adam state, data) + outputs - the outputs "
        "written in place of the donated arguments + temporaries. `C state`: dtype of C's Adam moments.",
        ["n", "C state", "s/step", "peak GiB", "temporaries GiB", "C alone GiB"])
    for n in sizes:
        for dtype in (None, "bfloat16"):
            r = scaling_case(n, max(2, repeats // 2), dtype)
            plan = "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / gib:.2f}"
            temp = "-" if r["temp_bytes"] is None else f"{r['temp_bytes'] / gib:.2f}"
            lines.append(f"| {n} | {dtype or 'float32'} | {r['step_s']:.3f} | {plan} | {temp} | "
                         f"{r['coef_bytes'] / gib:.2f} |")
    return lines


LARGE_CLUSTERS = 10
LARGE_POST = CLUSTER_POST._replace(solver="auto")  # the iterative solver past cluster.LARGE_N


def peak_memory_bytes(device) -> tuple[int, str]:
    """``(bytes, what)``: the allocator's peak on an accelerator, else the process's peak resident set size."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


# The fine-tunes of the large-n section, each from the same pretraining: DSC-Net's constant C at the preset's
# rate; the same with C's rate alone scaled to n (Preset.coef_lr), or the rates of C and of the network both
# (Preset.finetune_lr), see large_variant; or C from jaxsc.train.ridge_start at the preset's rate.
LARGE_STARTS = ("constant", "constant-coef-lr-per-n", "constant-lr-per-n", "ridge")
LARGE_LR_N = 1000  # the n of the mnist-1000 preset, whose finetune_lr (DSC-Net's 1e-3) is kept at this n


def large_variant(base, start: str, n: int):
    """The preset of one fine-tune of the large-n section (:data:`LARGE_STARTS`): ``constant-coef-lr-per-n``
    scales C's rate by ``LARGE_LR_N / n``, ``constant-lr-per-n`` the network's too. Motivated by the entries of
    the self-expressive C of n points on a fixed number of subspaces, which shrink like 1/n, while Adam moves each
    by about its rate a step. (An exploration with the subspace labels, 2026-12-07: both rates scaled recovered
    the subspaces at n = 5000, and at n = 10,000 with the rate this rule gave before the run; C's rate alone did
    not at n = 5000. ``large_n_rates.py`` then found that the network's rate alone decides at n = 5000, through
    its first steps.)"""
    if start == "constant-coef-lr-per-n":
        return base.replace(coef_lr=base.finetune_lr * LARGE_LR_N / n)
    if start == "constant-lr-per-n":
        return base.replace(finetune_lr=base.finetune_lr * LARGE_LR_N / n)
    return base.replace(coef_start=start)


def large_problem(n: int, finetune_steps: int, pretrain_steps: int):
    """``(x, y, preset)`` of the large-n section: ``LARGE_CLUSTERS`` subspaces of dimension 5 in R^784, noise
    0.05, min-max scaled to [0, 1] and shaped 28 x 28, the mnist-1000 preset's network and ``LARGE_POST``."""
    data = union_of_subspaces(LARGE_CLUSTERS, 5, 784, -(-n // LARGE_CLUSTERS), noise=0.05, seed=0)
    rows, y = data.x[:n], data.y[:n]
    x = ((rows - rows.min()) / (rows.max() - rows.min())).reshape(n, 28, 28, 1).astype(np.float32)
    base = get_preset("mnist-1000", x.shape[1:], "dsc-l2").replace(
        pretrain_steps=pretrain_steps, finetune_steps=finetune_steps, post=LARGE_POST)
    return x, y, base


def large_case(n: int, finetune_steps: int, pretrain_steps: int, starts=LARGE_STARTS) -> list[dict]:
    """DSC-L2 end to end at ``n`` (module docstring, item 5) on :func:`large_problem`: one pretraining, then a
    fine-tune and cluster stage from each start of C in ``starts``."""
    x, y, base = large_problem(n, finetune_steps, pretrain_steps)
    row = {"n": n, "coef_gib": 4 * n * n / 2 ** 30}
    start = time.perf_counter()
    autoencoder = jax.block_until_ready(jaxsc.pretrain(x, base, seed=0, verbose=False))
    row["pretrain_s"] = time.perf_counter() - start
    return [large_fit(x, y, large_variant(base, start, n), autoencoder, {**row, "start": start}) for start in starts]


@jax.jit
def coefficient_contrast(coef: jax.Array) -> jax.Array:
    """mean_i max_j |C_ij| / mean_ij |C_ij|: about 1 for a C of one magnitude everywhere, large when each row
    picks a few samples out (label free)."""
    magnitude = jnp.abs(coef)
    return jnp.mean(jnp.max(magnitude, axis=1)) / jnp.mean(magnitude)


def large_fit(x, y, base, autoencoder, row: dict) -> dict:
    """The fine-tune (C's Adam moments in float32, else bfloat16 where the memory check refuses) and the cluster
    stage of :func:`large_case`, timed, with the peak memory, C's contrast and the accuracy."""
    for state_dtype in (None, "bfloat16"):
        preset = base.replace(coef_state_dtype=state_dtype)
        try:
            start = time.perf_counter()
            fitted = jaxsc.fit(x, preset, autoencoder)
            jax.block_until_ready(fitted.coef)
            break
        except MemoryError as err:  # raised from XLA's plan, before C is allocated
            print(f"n = {row['n']}, C's moments in {state_dtype or 'float32'}: {err}")
        except jax.errors.JaxRuntimeError as err:  # an allocation the plan did not foresee
            if "RESOURCE_EXHAUSTED" not in str(err):
                raise
            print(f"n = {row['n']}, C's moments in {state_dtype or 'float32'}: out of memory while running: {err}")
    else:
        return {**row, "refused": "the fine-tune does not fit even with bfloat16 moments (see the printed messages)"}
    row.update(state=state_dtype or "float32", finetune_s=time.perf_counter() - start, steps=fitted.steps,
               coef_lr=preset.coef_rate, net_lr=preset.finetune_lr,
               contrast=float(coefficient_contrast(fitted.coef)))
    start = time.perf_counter()
    clustered = jaxsc.cluster_coef(fitted.coef, LARGE_CLUSTERS, preset.post)
    labels = np.asarray(clustered.labels)
    row["cluster_s"] = time.perf_counter() - start
    row["solver"] = "dense" if isinstance(clustered.affinity, jax.Array) else "iterative"  # sparse: BCOO
    row["peak_bytes"], row["peak_what"] = peak_memory_bytes(fitted.coef.devices().pop())
    row.update(acc=metrics.accuracy(y, labels), nmi=metrics.nmi(y, labels))
    return row


def large_section(rows: list) -> list[str]:
    gib = 2.0 ** 30
    what = rows[0].get("peak_what", "peak") if rows else "peak"
    lines = section_head(
        "Dense C at large n: DSC-L2 end to end",
        f"n MNIST-shaped samples of {LARGE_CLUSTERS} subspaces of "
        "dimension 5 in R^784 (noise 0.05, scaled to [0, 1]), the mnist-1000 preset's network (5x5@15, 3x3@10, "
        f"3x3@5), C dense n x n, cluster stage threshold {LARGE_POST.threshold}, subspace_dim "
        f"{LARGE_POST.subspace_dim}, power {LARGE_POST.power:g}, C - diag(C) + I. One pretraining per n (`pretrain "
        "s`), then the fine-tunes (`C start`): `constant` (`Preset.coef_start`: 1e-8 everywhere, DSC-Net's and "
        "every preset's), the same with Adam's rate 1e-3 x 1000 / n for C alone (`constant-coef-lr-per-n`, "
        "`Preset.coef_lr`) or for C and the network (`constant-lr-per-n`, `Preset.finetune_lr`; "
        "`speed.large_variant`), or `ridge` (`jaxsc.train.ridge_start`: the exact minimiser of "
        "the objective's terms quadratic in C for the pretrained network, computed inside `fine-tune s`). Each "
        "stage timed to its finished result, compilation included. `C state`: dtype of C's Adam moments "
        f"(float32 where `jaxsc.fit`'s memory check passed, else bfloat16). `peak`: the {what} since the process "
        "started, sizes in increasing order. `contrast`: mean_i max_j |C_ij| / mean |C_ij| of the fitted C "
        "(label free; about 1 when C has one magnitude everywhere). ACC and NMI against the subspace labels, a "
        "check that the run learned something rather than a benchmark; the ridge start was motivated by the "
        "constant start's contrast (see `ridge_start`'s docstring), the rates per n by the same diagnosis and "
        "explored with the labels at n = 5000 and 10,000 before this run (`large_variant`'s docstring).",
        ["n", "C alone GiB", "C start", "C lr", "net lr", "C state", "pretrain s", "fine-tune steps", "fine-tune s",
         "cluster solver",
         "cluster s", "peak GiB", "contrast", "ACC", "NMI"])
    notes = []
    for r in rows:
        head = f"| {r['n']} | {r['coef_gib']:.2f} | {r.get('start', 'constant')} |"
        if "refused" in r:
            lines.append(f"{head} - | - | - | {r['pretrain_s']:.1f} | - | - | - | - | - | - | - | - |")
            notes.append(f"n = {r['n']}, {r['start']} start: {r['refused']}.")
            continue
        lines.append(f"{head} {r['coef_lr']:g} | {r['net_lr']:g} | {r['state']} | {r['pretrain_s']:.1f} | "
                     f"{r['steps']} | {r['finetune_s']:.1f} | "
                     f"{r['solver']} | {r['cluster_s']:.1f} | {r['peak_bytes'] / gib:.2f} | {r['contrast']:.1f} | "
                     f"{r['acc']:.4f} | {r['nmi']:.4f} |")
    return lines + ([""] + notes if notes else [])


DISTILL_N = (1000, 5139)  # 5139: the mnist-0-4 protocol's target


def distill_case(n: int, repeats: int) -> dict:
    """Seconds of one LRSC fine-tune step (LRSC's target objective, distillation and InfoNCE on) with the batch
    ``{'x', 'teacher'}`` (W built in the step) and ``{'x', 'teacher_weights'}`` (W given), taking turns, and of
    building W once."""
    preset = jaxsc.presets.LRSCPreset().as_preset()
    model = jaxsc.build_autoencoder(preset, (28, 28, 1))
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, 28, 28, 1))
    teacher = jax.random.normal(jax.random.PRNGKey(1), (n, 128))
    params = init_self_expressive_params(model.init(jax.random.PRNGKey(2), x[:2])["params"], n, preset.coef_init)
    objective = build_objective(preset, model)
    terms = {k: jnp.zeros(()) for k in ("rec", "reg", "se", "distill", "nce")}
    weights = jax.block_until_ready(target_teacher_weights(teacher))
    w_s, _ = best_of(lambda: jax.block_until_ready(target_teacher_weights(teacher)), repeats)
    steppers = {}
    for name, batch in (("per step", {"x": x, "teacher": teacher}), ("once", {"x": x, "teacher_weights": weights})):
        state = TrainState(params, objective.optimizer().init(params), jnp.zeros((), jnp.int32),
                           jnp.zeros((), jnp.int32), jnp.zeros(()), dict(terms))
        steppers[name] = jax_stepper(jax.tree.map(jnp.copy, state), batch, jax.random.PRNGKey(3), objective)[0]
    best = interleaved_best(steppers, repeats)
    return {"n": n, "per_step_s": best["per step"][0], "once_s": best["once"][0], "build_w_s": w_s}


def distill_section(rows: list) -> list[str]:
    lines = section_head(
        "LRSC distillation: the teacher's heat kernel W built in every fine-tune step or once",
        "One full-batch LRSC fine-tune step (the preset's "
        "target objective: reconstruction, ||C||_F^2, self-expression, normalised distillation, InfoNCE) on "
        "MNIST-shaped data with 128-dimensional teacher features; `W in the step`: W = row-normalised "
        "exp(-||t_i - t_j||^2 / median) built from the features inside the step (before 2026-11-24); "
        "`W given`: built once (`build W s`) and passed as `teacher_weights` (`fit_lrsc` since then).",
        ["n", "W in the step s", "W given s", "speed-up", "build W s"])
    for r in rows:
        lines.append(f"| {r['n']} | {r['per_step_s']:.3f} | {r['once_s']:.3f} | "
                     f"{r['per_step_s'] / r['once_s']:.1f}x | {r['build_w_s']:.3f} |")
    return lines


PSEUDO_GRAPH_CASES = ((1440, 20), (5000, 10), (10000, 10))  # (n, clusters): COIL20, the large-scale sample, 10k


def term_forms_case(ours, reference_form, args: tuple, argnums: tuple, n: int, size: int, repeats: int) -> dict:
    """Seconds (best of ``repeats`` rounds, taking turns) and XLA's temporaries, in units of an n x n float32
    array, of a loss term's value and gradients with respect to ``args[argnums]``, jitted, in jaxsc's form
    (``ours``) and the reference's; ``size``: the case's other dimension (a row of :func:`term_forms_section`)."""
    calls, temps = {}, {}
    for name, loss in (("ours", ours), ("reference", reference_form)):
        compiled = jax.jit(jax.value_and_grad(loss, argnums=argnums)).lower(*args).compile()
        temps[name] = compiled.memory_analysis().temp_size_in_bytes / (4 * n * n)
        calls[name] = lambda compiled=compiled: jax.block_until_ready(compiled(*args))
        calls[name]()
    best = interleaved_best(calls, repeats)
    return {"n": n, "size": size, "ours_s": best["ours"][0], "reference_s": best["reference"][0],
            "ours_temp": temps["ours"], "reference_temp": temps["reference"]}


def term_forms_section(title: str, text: str, size_column: str, names: tuple[str, str], rows: list) -> list[str]:
    """A section of :func:`term_forms_case` rows, jaxsc's form and the reference's called ``names``."""
    ours, theirs = names
    lines = section_head(title, text, ["n", size_column, f"{ours} s", f"{theirs} s", "speed-up",
                                       f"{ours} temporaries", f"{theirs} temporaries"])
    for r in rows:
        lines.append(f"| {r['n']} | {r['size']} | {r['ours_s']:.4f} | {r['reference_s']:.4f} | "
                     f"{r['reference_s'] / r['ours_s']:.2f}x | {r['ours_temp']:.2f} | {r['reference_temp']:.2f} |")
    return lines


def pseudo_graph_case(n: int, k: int, repeats: int) -> dict:
    """The contrastive pseudo-graph term's value and gradients with respect to the probabilities and S, blocked
    (jaxsc) and whole-matrix (reference)."""
    probs = jax.nn.softmax(3.0 * jax.random.normal(jax.random.PRNGKey(0), (n, k)))
    similarity = jax.random.uniform(jax.random.PRNGKey(1), (n, n))
    return term_forms_case(jaxsc.losses.pseudo_graph_contrastive, reference.pseudo_graph_contrastive_whole,
                           (probs, similarity), (0, 1), n, k, repeats)


def pseudo_graph_section(rows: list) -> list[str]:
    return term_forms_section(
        "PSSC's contrastive pseudo-graph term: blocks of rows against the whole n x n matrices",
        "The term (1/n) sum_ij [S_ij d_ij^2 + (1 - S_ij) "
        "max(0, 1 - d_ij)^2] with its gradients with respect to the n x k probabilities and S, jitted: "
        "`blocked`, jaxsc's custom VJP over blocks of 256 rows (`jaxsc.losses.pseudo_graph_contrastive`, "
        "since 2026-12-06); `whole`, autodiff of the expression on whole n x n matrices (before; "
        "`jaxsc._src.testing.reference`). Temporaries: XLA's plan, in units of an n x n float32 array (the "
        "gradient with respect to S is an output, not counted).", "k", ("blocked", "whole"), rows)


# (n, D): COIL20's and EYaleB's images (RGRL presets), and the large-scale path's sample of MNIST rows
LAPLACIAN_CASES = ((1440, 1024), (2414, 2016), (5000, 784))


def laplacian_case(n: int, dim: int, repeats: int) -> dict:
    """RGRL's relation-weighted reconstruction with its gradients with respect to X_hat and C, jaxsc's Gram-matrix
    custom VJP against autodiff of W X_hat (reference)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x, x_hat = jax.random.uniform(keys[0], (n, dim)), jax.random.uniform(keys[1], (n, dim))
    coef = 1e-3 * jax.random.normal(keys[2], (n, n))
    return term_forms_case(jaxsc.losses.laplacian_reconstruction_loss, reference.laplacian_reconstruction_matmul,
                           (x, x_hat, coef), (1, 2), n, dim, repeats)


def laplacian_section(rows: list) -> list[str]:
    return term_forms_section(
        "RGRL's relation-weighted reconstruction: the Gram matrix against W X_hat",
        "The term ||X - X_hat||^2 + 2 tr(X^T (I - W) X_hat), W = D^-1/2 (S + I) D^-1/2, with its gradients with "
        "respect to the n x D reconstruction and C, jitted: `gram`, jaxsc's custom VJP from M = X X_hat^T "
        "(`jaxsc.losses.laplacian_reconstruction_loss`, since 2026-12-06: two n x n by n x D products); `matmul`, "
        "autodiff of W X_hat (before; `jaxsc._src.testing.reference`: three). Temporaries: XLA's plan, in units "
        "of an n x n float32 array (the gradient with respect to C is an output, not counted).", "D",
        ("gram", "matmul"), rows)


# (model, layer, input shape (n, H, W, C), kernel, output channels, stride): the layers whose kernel gradients
# dominated the profiles, DSC-Net's EYaleB encoder on all 2414 images and LRSC's teacher on a batch of 128
# COIL-100 images, first layers on either side of ``PATCH_MAX_ELEMENTS`` (the forward's switch), and SAI's CNN
# on a batch of 256 MNIST images, whose stride-1 layers lie on either side of ``PATCH_GRADIENT_MAX_ELEMENTS``
# (the kernel gradient's switch).
CONV_CASES = (("DSC ORL", "enc 1", (400, 32, 32, 1), 3, 3, 2),
              ("DSC COIL20", "enc 1", (1440, 32, 32, 1), 3, 15, 2),
              ("RGRL MNIST", "enc 1", (1000, 28, 28, 1), 5, 15, 2),
              ("DSC EYaleB", "enc 1", (2414, 48, 42, 1), 5, 10, 2),
              ("DSC EYaleB", "enc 2", (2414, 24, 21, 10), 3, 20, 2),
              ("DSC EYaleB", "enc 3", (2414, 12, 11, 20), 3, 30, 2),
              ("LRSC teacher", "conv 2", (128, 64, 64, 32), 3, 32, 2),
              ("LRSC teacher", "conv 3", (128, 32, 32, 32), 3, 64, 1),
              ("LRSC teacher", "conv 5", (128, 16, 16, 64), 3, 128, 1),
              ("SAI CNN", "enc 1", (256, 28, 28, 1), 5, 64, 1),
              ("SAI CNN", "enc 2", (256, 14, 14, 64), 5, 32, 1),
              ("SAI CNN", "dec 1", (256, 14, 14, 32), 5, 64, 1),
              ("SAI CNN", "dec 2", (256, 28, 28, 64), 5, 1, 1))


def conv_case(case, repeats: int) -> dict:
    """Seconds of the forward convolution and of d/dK sum(conv(x, K) * g), by jaxsc's ``same_conv`` and by lax's
    convolution and its autodiff (the transposed convolution of the decoder has the same kernel gradient with
    input and output swapped), the sides taking turns."""
    model, layer, shape, k, cout, stride = case
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, shape[-1], cout))
    g = jax.random.normal(jax.random.PRNGKey(2), (shape[0], -(-shape[1] // stride), -(-shape[2] // stride), cout))

    def lax_conv(x, kernel):
        return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    # x and g are arguments, not closed-over constants (XLA would constant-fold the convolutions)
    convs = {"jaxsc": lambda x, k: same_conv(x, k, stride), "lax": lax_conv}
    fns = {}
    for name, conv in convs.items():
        fns[name] = jax.jit(conv)
        fns[name + " grad"] = jax.jit(jax.grad(lambda kernel, x, g, conv=conv: jnp.sum(conv(x, kernel) * g)))
    args = {name: (x, kernel) if name in convs else (kernel, x, g) for name in fns}
    out = {name: jax.block_until_ready(fn(*args[name])) for name, fn in fns.items()}
    best = interleaved_best({name: lambda fn=fn, a=args[name]: jax.block_until_ready(fn(*a))
                             for name, fn in fns.items()}, repeats)
    times = {name: seconds for name, (seconds, _) in best.items()}

    def error(a, b):
        return float(jnp.max(jnp.abs(out[a] - out[b])) / jnp.max(jnp.abs(out[b])))

    return {"model": model, "layer": layer, "shape": shape, "k": k, "cout": cout, "stride": stride,
            "times": times, "error": max(error("jaxsc", "lax"), error("jaxsc grad", "lax grad")),
            "forward": ("direct" if uses_direct_sum(kernel.shape) else
                        "patches" if uses_patch_forward(shape, k, stride) else "lax"),
            "patch_gradient": uses_patch_gradient(shape, k, stride)}


# (model, layer, output shape (n, H, W, C) of the stride-2 transposed convolution, kernel, its input channels):
# the decoders' layers of DSC-Net's ORL, COIL20 and EYaleB and RGRL's MNIST networks.
TRANSPOSE_CASES = (("DSC ORL", "dec 2", (400, 16, 16, 3), 3, 5),
                   ("DSC ORL", "dec 3", (400, 32, 32, 1), 3, 3),
                   ("DSC COIL20", "dec 1", (1440, 32, 32, 1), 3, 15),
                   ("RGRL MNIST", "dec 3", (1000, 28, 28, 1), 5, 15),
                   ("DSC EYaleB", "dec 1", (2414, 12, 11, 20), 3, 30),
                   ("DSC EYaleB", "dec 2", (2414, 24, 21, 10), 3, 20),
                   ("DSC EYaleB", "dec 3", (2414, 48, 42, 1), 5, 10))
# (model, n, image shape, kernels, channels): whole autoencoders, gradient of the reconstruction error.
AUTOENCODER_CASES = (("DSC ORL", 400, (32, 32, 1), (3, 3, 3), (3, 3, 5)),
                     ("DSC COIL20", 1440, (32, 32, 1), (3,), (15,)),
                     ("RGRL MNIST", 1000, (28, 28, 1), (5, 3, 3), (15, 10, 5)),
                     ("DSC EYaleB", 2414, (48, 42, 1), (5, 3, 3), (10, 20, 30)))


def _as_before(fn):
    """``fn`` traced with jaxsc's convolutions as they were before 2026-12-05: XLA's own stride-2 transposed
    convolutions, no sums of shifted windows."""
    def traced(*args):
        with mock.patch.object(conv_module, "uses_phase_transpose", lambda stride: False), \
                mock.patch.object(conv_module, "DIRECT_MAX_TERMS", 0):
            return fn(*args)
    return traced


def transpose_case(case, repeats: int) -> dict:
    """Seconds of the stride-2 transposed convolution (``same_conv_transpose``; also the input gradient of a
    stride-2 ``same_conv``) in the phase form and as lax's linear transpose of the convolution, taking turns.
    Its own gradients are convolutions and kernel gradients, the same on both sides."""
    model, layer, shape, k, cin = case
    hw = shape[1:3]
    y = jax.random.normal(jax.random.PRNGKey(0), (shape[0], -(-hw[0] // 2), -(-hw[1] // 2), cin))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, shape[-1], cin))

    def forward(y, kernel):
        return same_conv_transpose(y, kernel, hw)

    fns = {"jaxsc": jax.jit(forward), "lax": jax.jit(_as_before(forward))}
    return _timed_pair({"model": model, "layer": layer, "shape": shape, "k": k, "cout": shape[-1]},
                       fns, (y, kernel), repeats)


def autoencoder_case(case, repeats: int) -> dict:
    """Seconds of the gradient of ||X - dec(enc(X))||^2 over all n images (the autoencoder's share of a
    fine-tune step) with jaxsc's convolutions and with those it had before 2026-12-05, taking turns."""
    model, n, image_shape, kernels, channels = case
    net = ConvAutoencoder(image_shape=image_shape, kernels=kernels, channels=channels)
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, *image_shape))
    params = net.init(jax.random.PRNGKey(1), x[:2])

    def gradient(params, x):
        return jax.grad(lambda p: jnp.sum((net.apply(p, x) - x) ** 2))(params)

    fns = {"jaxsc": jax.jit(gradient), "lax": jax.jit(_as_before(gradient))}
    return _timed_pair({"model": model, "n": n, "image": image_shape, "kernels": kernels, "channels": channels},
                       fns, (params, x), repeats)


def _timed_pair(row: dict, fns: dict, args: tuple, repeats: int) -> dict:
    """``row`` with the best seconds of the ``"jaxsc"`` and ``"lax"`` functions of ``fns`` on ``args`` (compiled
    first, then taking turns) and the largest relative difference between their outputs."""
    out = {name: jax.block_until_ready(fn(*args)) for name, fn in fns.items()}
    best = interleaved_best({name: lambda fn=fn: jax.block_until_ready(fn(*args)) for name, fn in fns.items()},
                            repeats)
    errors = [float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
              for a, b in zip(jax.tree.leaves(out["jaxsc"]), jax.tree.leaves(out["lax"]))]
    return {**row, "times": {name: seconds for name, (seconds, _) in best.items()}, "error": max(errors)}


def transpose_lines(rows: list, autoencoder_rows: list) -> list[str]:
    lines = ["", "Transposed stride-2 convolutions (the decoders' layers), the same turns: jaxsc's phase form (one "
             "stride-1 convolution with 4x the output channels, then a depth-to-space shuffle; "
             "`jaxsc/_src/models/conv.py`) against lax's linear transpose of the convolution (what jaxsc ran "
             "before 2026-12-05). The same operation is the input gradient of the encoder's stride-2 convolutions; the "
             "layer's own gradients are a convolution and a kernel gradient.", "",
             *table_head(["model", "layer", "output", "kernel", "jaxsc s", "lax s", "speed-up", "max rel. difference"])]
    for r in rows:
        t = r["times"]
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"| {r['model']} | {r['layer']} | {shape} | {r['k']}x{r['k']}@{r['cout']} "
                     f"| {t['jaxsc']:.4f} | {t['lax']:.4f} | {t['lax'] / t['jaxsc']:.2f}x | {r['error']:.1e} |")
    lines += ["", "Whole autoencoders on all n images: the gradient of ||X - dec(enc(X))||^2 (the network's share of "
              "a fine-tune step), with jaxsc's convolutions and with those before 2026-12-05 (lax's transposed "
              "convolutions, no window sums), the same turns.", "",
              *table_head(["model", "n", "encoder", "jaxsc s", "before s", "speed-up", "max rel. difference"])]
    for r in autoencoder_rows:
        t = r["times"]
        encoder = encoder_text(r["kernels"], r["channels"])
        lines.append(f"| {r['model']} | {r['n']} | {encoder} | {t['jaxsc']:.4f} | {t['lax']:.4f} | "
                     f"{t['lax'] / t['jaxsc']:.2f}x | {r['error']:.1e} |")
    return lines


def conv_section(rows: list) -> list[str]:
    lines = section_head(
        "Convolutions: jaxsc's window sums, patch-matrix products and phase form against lax's",
        "Per layer shape, the jitted forward convolution and "
        "the jitted gradient of sum(conv(x, K) * G) with respect to K, both sides in the same run "
        "(`jaxsc.models.same_conv`, `jaxsc/_src/models/conv.py`). `forward`: whether jaxsc's forward is the "
        "sum of shifted windows (k k C_in at most `DIRECT_MAX_TERMS`), the patch product (P at most "
        "`PATCH_MAX_ELEMENTS` entries) or lax's convolution itself; where it is "
        "lax's, the forward columns time the same computation twice and show the noise of the measure. "
        "`gradient`: likewise for the kernel gradient, P^T dY (P at most `PATCH_GRADIENT_MAX_ELEMENTS` "
        "entries) or lax's autodiff.",
        ["model", "layer", "input", "kernel", "stride", "forward", "gradient", "jaxsc fwd s", "lax fwd s",
         "fwd speed-up", "jaxsc grad s", "lax grad s", "grad speed-up", "max rel. difference"])
    for r in rows:
        shape, t = "x".join(map(str, r["shape"])), r["times"]
        lines.append(f"| {r['model']} | {r['layer']} | {shape} | {r['k']}x{r['k']}@{r['cout']} | {r['stride']} | "
                     f"{r['forward']} | {'patches' if r['patch_gradient'] else 'lax'} | "
                     f"{t['jaxsc']:.4f} | {t['lax']:.4f} | "
                     f"{t['lax'] / t['jaxsc']:.1f}x | {t['jaxsc grad']:.3f} | {t['lax grad']:.3f} | "
                     f"{t['lax grad'] / t['jaxsc grad']:.1f}x | {r['error']:.1e} |")
    return lines


def previous_sections(path: Path) -> dict:
    """The ``## `` sections of an earlier result file, keyed like ``SECTIONS`` (to keep those not re-run)."""
    if not path.exists():
        return {}
    titles = {"## Cluster stage": "cluster", "## DSC fine-tune step": "step", "## C Z products": "products",
              "## Convolutions": "conv",
              "## Scaling": "scaling", "## Dense C at large n": "large", "## LRSC distillation": "distill",
              "## PSSC's contrastive pseudo-graph": "pseudo_graph",
              "## RGRL's relation-weighted reconstruction": "laplacian"}
    found = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        chunk = "## " + chunk.strip()
        for title, name in titles.items():
            if chunk.startswith(title):
                found[name] = chunk.splitlines()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=None,
                        help="sections to measure (default: cluster and step, and scaling when --scaling is given); "
                             "the others are kept from the existing result file, with the date they were measured")
    parser.add_argument("--cluster-n", type=int, nargs="+", default=[1440])
    parser.add_argument("--dense-max-n", type=int, default=10 ** 9,
                        help="skip the dense solver past this n (O(n^3): 2 minutes a call at n = 10000 on 2 cores)")
    parser.add_argument("--scaling", type=int, nargs="*", default=[], metavar="N")
    parser.add_argument("--large", type=int, nargs="*", default=[], metavar="N",
                        help="sizes of the large-n section (increasing)")
    parser.add_argument("--large-steps", type=int, default=100, help="fine-tune steps of the large-n section")
    parser.add_argument("--large-pretrain-steps", type=int, default=500,
                        help="pretraining steps (mini-batches of 128) of the large-n section")
    parser.add_argument("--large-starts", nargs="+", choices=LARGE_STARTS, default=list(LARGE_STARTS),
                        help="starts of C in the large-n section, each a fine-tune from the same pretraining")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dscnet-port", type=Path, default=None,
                        help="a checkout of github.com/XifengGuo/DSC-Net outside this repo (needs torch)")
    args = parser.parse_args()
    sections = args.sections or (["cluster", "step"] + (["scaling"] if args.scaling else [])
                                 + (["large"] if args.large else []))
    if "scaling" in sections and not args.scaling:
        parser.error("--sections scaling needs --scaling N ...")
    if "large" in sections and not args.large:
        parser.error("--sections large needs --large N ...")
    device = jax.devices()[0]
    path = RESULTS / f"speed_{device.platform}.md"
    built = previous_sections(path)

    def step_rows():
        port = None
        if args.dscnet_port is not None:
            try:
                port = load_port(args.dscnet_port)
            except ImportError as err:
                print(f"PyTorch side not measured: {err}")
        return step_section([step_case(name, port, args.repeats) for name in STEP_CASES])

    def large_rows():  # the file is rewritten after each size: a size that kills the process keeps the others
        rows = []
        for n in sorted(args.large):
            rows.extend(large_case(n, args.large_steps, args.large_pretrain_steps, args.large_starts))
            built["large"] = large_section(rows)
            write_results(path, device, built)
        return built["large"]

    builders = {  # in the order they run
        "step": step_rows,
        "products": lambda: products_section([row for name in STEP_CASES
                                              for row in products_case(name, args.repeats)]),
        "cluster": lambda: cluster_section([row for n in args.cluster_n
                                            for row in cluster_case(n, args.repeats, args.dense_max_n)],
                                           args.dense_max_n),
        "conv": lambda: conv_section([conv_case(case, args.repeats) for case in CONV_CASES]) + transpose_lines(
            [transpose_case(case, args.repeats) for case in TRANSPOSE_CASES],
            [autoencoder_case(case, args.repeats) for case in AUTOENCODER_CASES]),
        "scaling": lambda: scaling_section(args.scaling, args.repeats),
        "large": large_rows,
        "distill": lambda: distill_section([distill_case(n, max(2, args.repeats // 2)) for n in DISTILL_N]),
        "pseudo_graph": lambda: pseudo_graph_section([pseudo_graph_case(n, k, args.repeats)
                                                      for n, k in PSEUDO_GRAPH_CASES]),
        "laplacian": lambda: laplacian_section([laplacian_case(n, dim, args.repeats) for n, dim in LAPLACIAN_CASES]),
    }
    for name, build in builders.items():
        if name in sections:
            built[name] = build()
            write_results(path, device, built)  # each finished section is kept if a later one fails
    print(path.read_text())


def write_results(path: Path, device, built: dict) -> None:
    """The result file: a header naming the machine, then the sections in ``SECTIONS`` order."""
    lines = [f"# Speed on {device.platform} ({device.device_kind})", "",
             f"jax {jax.__version__}, {platform.platform()}. Generated by "
             "`benchmarks/speed.py`; within a section both sides are measured in the same run, taking turns round "
             "by round, best of the rounds on each side, compile time excluded (shown separately). Each section "
             "gives the date it was measured and, since 2026-12-06, the machine: sections measured on different "
             "machines are not comparable (the ratios against torch change with the CPU)."]
    for name in SECTIONS:
        if name in built:
            lines += [""] + built[name]
    RESULTS.mkdir(exist_ok=True)
    path.write_text("\n".join(lines + [""]))


if __name__ == "__main__":
    main()
