"""Why the network's learning rate decides DSC-Net's constant start of C at large n (issue 6).

``speed.py --large`` found, on its union of subspaces at n = 5000 to 20,000, that from the constant start
(C = 1e-8 everywhere) the labels are near chance with Adam's rate 1e-3, that scaling C's rate alone to
1e-3 x 1000 / n does not recover them, and that scaling C's and the network's does. This script fills the
2 x 2 of the two rates (C's: ``Preset.coef_lr``; the network's: ``Preset.finetune_lr``) from one pretraining at
one n (default 5000, 100 fine-tune steps, as there), then, at 1e-3 for both, changes only when the network
moves (its rate an optax schedule; C's Adam unchanged): still for the first ``--hold`` steps, warmed up
linearly over them, or still after them; and, still after them, C trained on by a new Adam (fresh moments), from
where it was or from C = 1e-8 again; and row 1 at other n (``--other-n``). Each row records, read every
``--every`` steps:

- ``Z moved``: ||Z_t - Z_0||_F / ||Z_0||_F, Z_0 the pretrained network's code;
- ``Z norm``: ||Z_t||_F / ||Z_0||_F;
- ``block share``: the share of C's non-uniform part P = C - (row means of C) 1^T that lies between samples of
  the same subspace, sum_{y_i = y_j} |P_ij| / sum_ij |P_ij| (the chance level, for P without structure, is
  the share of same-subspace pairs, printed with the table);
- ``ACC (C)``: the cluster stage on C_t;

and, at the end: ``mean share``: n ||mean_i z_i||^2 / ||Z||_F^2 (1: every sample has the same code);
``rel. residual``: ||Z - C Z||_F / ||Z||_F; ``contrast``: ``speed.coefficient_contrast`` of C (label free);
``ACC (ridge on Z)``: the cluster stage on the exact minimiser of the self-expression and L2 terms for the final
Z (``jaxsc.train.ridge_start``), i.e. whether the final Z still holds the subspaces whatever C learned; the same
for Z_0 in the first line.

With ``--dataset`` instead (real data, e.g. mnist-test): :func:`jaxsc.fit_large_scale`'s path for DSC-L2 per seed
(its sample, preset and pretraining), fine-tuned with the network moving from step 1 (the path's preset), still
for steps 1-``--hold``, or warmed up over them, to see whether a real code also shrinks early and whether a
later start of the network helps there (``real_data_case``); ``ACC (all N)`` labels the rest of the data as the
path does. ``--hold 15``: half the path's 30 steps, as 50 is of the 100 above, fixed before the run.

Labels are used only in the block share and the ACC columns, to tell the failures apart; no preset was chosen
from them. Writes ``benchmarks/results/large_n_rates.md`` (``large_n_rates_<dataset>.md`` with ``--dataset``).

    python benchmarks/large_n_rates.py            # about 35 minutes on 2 CPU cores
    python benchmarks/large_n_rates.py --dataset mnist-test --hold 15 --every 10    # JAXSC_DATA_DIR set
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _tables import RESULTS, machine_text
from speed import LARGE_CLUSTERS, LARGE_LR_N, coefficient_contrast, large_problem

import jaxsc
from jaxsc import metrics
from jaxsc._src.api import _finetune_problem, build_objective
from jaxsc._src.cli import _machine
from jaxsc._src.methods.out_of_sample import draw_sample, label_out_of_sample, large_scale_preset
from jaxsc.train import ridge_start, train

TRACED = ("Z moved", "Z norm", "block share", "ACC (C)")


def network_schedules(hold: int) -> dict:
    """When the network moves, by name: ``rate -> optax schedule`` (None: the constant rate, as in ``fit``)."""
    return {"constant": None,
            f"still for steps 1-{hold}": lambda rate: optax.join_schedules(
                [optax.constant_schedule(0.0), optax.constant_schedule(rate)], [hold]),
            f"warmed up over steps 1-{hold}": lambda rate: optax.linear_schedule(0.0, rate, hold),
            f"still after step {hold}": lambda rate: optax.join_schedules(
                [optax.constant_schedule(rate), optax.constant_schedule(0.0)], [hold])}


def latent(model, preset, autoencoder_params, x) -> jax.Array:
    """The code Z (a row per sample) of ``x``, its pixels scaled by ``preset.data_scale`` as in the fine-tune."""
    return model.apply({"params": autoencoder_params}, x * preset.data_scale, method="encode").reshape(x.shape[0], -1)


def mean_share(z: jax.Array) -> float:
    """n ||mean_i z_i||^2 / ||Z||_F^2."""
    return float(z.shape[0] * jnp.sum(jnp.mean(z, axis=0) ** 2) / jnp.sum(z ** 2))


@jax.jit
def block_share(coef: jax.Array, onehot: jax.Array) -> jax.Array:
    """sum_{y_i = y_j} |P_ij| / sum_ij |P_ij| for P = C - (row means of C) 1^T; ``onehot``: (n, K) labels."""
    magnitude = jnp.abs(coef - jnp.mean(coef, axis=1, keepdims=True))
    return jnp.sum((magnitude @ onehot) * onehot) / jnp.sum(magnitude)


def cluster_labels(coef, preset, n_clusters: int, seed: int = 0) -> np.ndarray:
    """The cluster stage's labels of C (``preset.post``, the key of ``seed`` as in :func:`jaxsc.run`)."""
    return np.asarray(jaxsc.cluster_coef(coef, n_clusters, preset.post, seed=seed).labels)


def cluster_accuracy(coef, preset, y: np.ndarray, seed: int = 0) -> float:
    return metrics.accuracy(y, cluster_labels(coef, preset, int(y.max()) + 1, seed))


def ridge_accuracy(preset, model, autoencoder_params, x, y: np.ndarray, seed: int = 0) -> float:
    """ACC of the cluster stage on :func:`jaxsc.train.ridge_start` for this network: the minimiser of the
    objective's terms quadratic in C for its code Z."""
    objective = build_objective(preset, model)
    return cluster_accuracy(ridge_start(objective, autoencoder_params, x * preset.data_scale), preset, y, seed)


def tracer(model, x, y: np.ndarray, z0, preset, trace: dict, seed: int = 0):
    """A ``stop_check`` that appends the traced quantities (module docstring) of the parameters to ``trace``."""
    onehot = jax.nn.one_hot(y, int(y.max()) + 1)

    def record(params):
        z = latent(model, preset, params["autoencoder"], x)
        trace["Z moved"].append(float(jnp.linalg.norm(z - z0) / jnp.linalg.norm(z0)))
        trace["Z norm"].append(float(jnp.linalg.norm(z) / jnp.linalg.norm(z0)))
        trace["block share"].append(float(block_share(params["coef"], onehot)))
        trace["ACC (C)"].append(cluster_accuracy(params["coef"], preset, y, seed))
        return False

    return record


def traced_train(objective, params, data, steps: int, every: int, record):
    """:func:`jaxsc.train.train` as ``fit`` runs it (C donated), ``record`` called every ``every`` steps."""
    return train(objective, params, data, steps, log_every=every, verbose=False, stop_check=record,
                 give_sample_matrices=True)


def summary_row(preset, model, x, y: np.ndarray, params, trace: dict, seconds: float, schedule: str,
                seed: int = 0) -> dict:
    """The table's row of a fine-tune that ended at ``params`` (with C's labels and the network, for
    :func:`real_data_case`)."""
    coef, network = params["coef"], params["autoencoder"]
    z = latent(model, preset, network, x)
    labels = cluster_labels(coef, preset, int(y.max()) + 1, seed)
    return {"coef_lr": preset.coef_rate, "net_lr": preset.finetune_lr, "schedule": schedule, "trace": trace,
            "seconds": seconds, "mean_share": mean_share(z),
            "residual": float(jnp.linalg.norm(z - coef @ z) / jnp.linalg.norm(z)),
            "contrast": float(coefficient_contrast(coef)), "acc": metrics.accuracy(y, labels),
            "ridge_acc": ridge_accuracy(preset, model, network, x, y, seed), "labels": labels, "network": network}


def rate_case(x, y, preset, model, autoencoder, z0, every: int, schedule: str = "constant",
              make_schedule=None, seed: int = 0) -> dict:
    """One fine-tune with ``preset``'s rates, the network's as ``make_schedule(rate)`` when given; the traced
    quantities read every ``every`` steps; ``seed``: the cluster stage's key."""
    trace = {name: [] for name in TRACED}
    objective, params, data = _finetune_problem(x, preset, autoencoder, None, seed)
    if make_schedule is not None:
        objective = dataclasses.replace(objective, lr_net=make_schedule(preset.finetune_lr))
    start = time.perf_counter()
    result = traced_train(objective, params, data, preset.finetune_steps, every,
                          tracer(model, x, y, z0, preset, trace, seed))
    return summary_row(preset, model, x, y, result.params, trace, time.perf_counter() - start, schedule, seed)


def restart_cases(x, y, preset, model, autoencoder, z0, every: int, hold: int) -> list[dict]:
    """``hold`` steps at ``preset``'s rates, then the network still for the rest of the fine-tune and C trained
    by a new Adam (fresh moments): from where it was, or from ``coef_init`` everywhere again. Each against the
    ``still after step hold`` row, whose C keeps its Adam moments."""
    first_trace = {name: [] for name in TRACED}
    objective, params, data = _finetune_problem(x, preset, autoencoder, None, 0)
    start = time.perf_counter()
    first = traced_train(objective, params, data, hold, every, tracer(model, x, y, z0, preset, first_trace))
    first_seconds = time.perf_counter() - start
    still = dataclasses.replace(objective, lr_net=0.0)
    rows = []
    for name, coef in ((f"still after step {hold}, C's Adam new", first.params["coef"]),
                       (f"still after step {hold}, C's Adam new, C from coef_init",
                        jnp.full_like(first.params["coef"], preset.coef_init))):
        trace = {key: list(values) for key, values in first_trace.items()}
        start = time.perf_counter()
        result = traced_train(still, {**first.params, "coef": jnp.array(coef)}, data, preset.finetune_steps - hold,
                              every, tracer(model, x, y, z0, preset, trace))
        rows.append(summary_row(preset, model, x, y, result.params, trace,
                                first_seconds + time.perf_counter() - start, name))
    return rows


def pretrained_problem(n: int, steps: int, pretrain_steps: int):
    """``(x, y, preset, model, autoencoder, z0)``: :func:`speed.large_problem`, its pretrained network and code."""
    x, y, base = large_problem(n, steps, pretrain_steps)
    model = jaxsc.build_autoencoder(base, x.shape[1:])
    autoencoder = jaxsc.pretrain(x, base, seed=0, verbose=False)
    return x, y, base, model, autoencoder, latent(model, base, autoencoder, x)


def size_case(n: int, steps: int, pretrain_steps: int, every: int) -> dict:
    """Row 1 (both rates at the preset's, the network moving from step 1) at another n, its own pretraining."""
    return {"n": n, **rate_case(*pretrained_problem(n, steps, pretrain_steps), every)}


def real_data_case(x_all: np.ndarray, y_all: np.ndarray, sample_size: int, seed: int, hold: int, every: int,
                   method: str = "dsc-l2") -> list[dict]:
    """The large-scale path of :func:`jaxsc.fit_large_scale` on real data for one seed (its sample, its preset,
    its seeded pretraining), fine-tuned three ways: the network moving from step 1 (the preset), still for steps
    1-``hold``, and warmed up over them; each row with ``acc_all``, ACC of every row of ``x_all`` labelled as
    :func:`jaxsc.fit_large_scale` labels them."""
    x_all = x_all.reshape(x_all.shape[0], -1)
    sample_index = draw_sample(x_all.shape[0], sample_size, seed)
    x, y = x_all[sample_index], y_all[sample_index]
    preset = large_scale_preset(method, int(y_all.max()) + 1, sample_size)
    model = jaxsc.build_autoencoder(preset, x.shape[1:])
    autoencoder = jaxsc.pretrain(x, preset, seed=seed, verbose=False)
    z0 = latent(model, preset, autoencoder, x)
    schedules = network_schedules(hold)
    rows = []
    for name in ("constant", f"still for steps 1-{hold}", f"warmed up over steps 1-{hold}"):
        row = rate_case(x, y, preset, model, autoencoder, z0, every, name, schedules[name], seed)
        labels = label_out_of_sample(x_all, preset, row["network"], sample_index, row["labels"])
        rows.append({**row, "seed": seed, "acc_all": metrics.accuracy(y_all, labels),
                     "chance": float(np.sum(np.bincount(y) ** 2) / len(y) ** 2)})
    return rows


def write_real_table(dataset: str, n: int, sample_size: int, every: int, rows: list) -> str:
    """``large_n_rates_<dataset>.md``: per network schedule, mean ± std over seeds of ``real_data_case``'s rows."""
    def cell(values, digits):
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

    r0, groups = rows[0], {}
    for r in rows:
        groups.setdefault(r["schedule"], []).append(r)
    lines = [f"# The network's schedule on {dataset}'s large-scale path (DSC-L2)", "",
             f"Generated by `benchmarks/large_n_rates.py --dataset {dataset}` on {datetime.date.today().isoformat()}, "
             f"{machine_text(_machine())}. `jaxsc.fit_large_scale`'s path (sample of m = {sample_size} of N = {n}, "
             f"the MLP autoencoder, its pretraining per seed, {r0['net_lr']:g} for C and the network, "
             f"{len(r0['trace']['Z norm']) * every} full-batch fine-tune steps from C = 1e-8), the network's rate "
             "changed only as the row says; the same seeds and so the same samples and pretrained networks in each "
             "row. `ACC (all N)`: the path's labels, 1-NN in latent space outside the sample; `ACC (C)`: the "
             f"sample's. First read after step {every}. Mean ± std over seeds. See the script's docstring for the "
             "other columns (labels only in the block share and ACC columns; nothing chosen from them). Chance "
             f"level of the block share: {np.mean([r['chance'] for r in rows]):.4f}.", "",
             "| network | seeds | ACC (all N) | ACC (C) | ACC (ridge on Z) | Z norm, first read | Z norm | "
             "block share, first read | block share |", "|---|---|---|---|---|---|---|---|---|"]
    for schedule, group in groups.items():
        norm, share = [r["trace"]["Z norm"] for r in group], [r["trace"]["block share"] for r in group]
        lines.append(f"| {schedule} | {len(group)} | {cell([r['acc_all'] for r in group], 4)} | "
                     f"{cell([r['acc'] for r in group], 4)} | {cell([r['ridge_acc'] for r in group], 4)} | "
                     f"{cell([t[0] for t in norm], 2)} | {cell([t[-1] for t in norm], 2)} | "
                     f"{cell([t[0] for t in share], 3)} | {cell([t[-1] for t in share], 3)} |")
    first = groups[r0["schedule"]]
    lines += ["", "Per seed, ACC (all N):", "", "| network | " + " | ".join(f"seed {r['seed']}" for r in first) + " |",
              "|---|" + "---|" * len(first)]
    for schedule, group in groups.items():
        lines.append(f"| {schedule} | " + " | ".join(f"{r['acc_all']:.4f}" for r in group) + " |")
    text = "\n".join(lines) + "\n"
    (RESULTS / f"large_n_rates_{dataset}.md").write_text(text)
    return text


def write_table(n: int, steps: int, every: int, z0_row: dict, rows: list, size_rows: list) -> str:
    lines = ["# The constant start of C at large n: C's and the network's learning rates", "",
             f"Generated by `benchmarks/large_n_rates.py` on {datetime.date.today().isoformat()}, "
             f"{machine_text(_machine())}. `speed.py --large`'s problem at n = {n} ({LARGE_CLUSTERS} subspaces of "
             f"dimension 5 in R^784, the mnist-1000 preset's network), one pretraining, {steps} fine-tune steps "
             f"from C = 1e-8 everywhere per row. See the script's docstring for the columns.", "",
             f"Pretrained Z_0: mean share {z0_row['mean_share']:.3f}, ACC (ridge on Z_0) "
             f"{z0_row['ridge_acc']:.4f}. Chance level of the block share: {z0_row['chance']:.4f}.",
             "", "| row | C lr | net lr | network | Z moved | Z norm | mean share | rel. residual | contrast | "
             "ACC (C) | ACC (ridge on Z) | fine-tune s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row, r in enumerate(rows, 1):
        lines.append(f"| {row} | {r['coef_lr']:g} | {r['net_lr']:g} | {r['schedule']} | "
                     f"{r['trace']['Z moved'][-1]:.2f} | {r['trace']['Z norm'][-1]:.2f} | {r['mean_share']:.3f} | "
                     f"{r['residual']:.3f} | {r['contrast']:.1f} | {r['acc']:.4f} | {r['ridge_acc']:.4f} | "
                     f"{r['seconds']:.0f} |")
    reads = len(rows[0]["trace"]["Z moved"])
    lines += ["", f"Traces, read after steps {every}, {2 * every}, ..., {reads * every}:", "",
              "| row | quantity | " + " | ".join(str(every * (i + 1)) for i in range(reads)) + " |",
              "|---|---|" + "---|" * reads]
    for row, r in enumerate(rows, 1):
        for name in TRACED:
            digits = 4 if name == "ACC (C)" else 3 if name == "block share" else 2
            lines.append(f"| {row} | {name} | " + " | ".join(f"{v:.{digits}f}" for v in r["trace"][name])
                         + " |")
    lines += ["", "Row 1's fine-tune at other n, each from its own pretraining (the same problem, the same steps):", "",
              "| n | Z norm after the first read | Z norm | block share after the first read | block share | ACC (C) | "
              "ACC (ridge on Z) |", "|---|---|---|---|---|---|---|"]
    for r in size_rows:
        norm, share = r["trace"]["Z norm"], r["trace"]["block share"]
        lines.append(f"| {r['n']} | {norm[0]:.2f} | {norm[-1]:.2f} | {share[0]:.3f} | {share[-1]:.3f} | "
                     f"{r['acc']:.4f} | {r['ridge_acc']:.4f} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "large_n_rates.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=100, help="fine-tune steps per row")
    parser.add_argument("--pretrain-steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=10, help="steps between reads")
    parser.add_argument("--hold", type=int, default=50, help="steps of the network's schedules")
    parser.add_argument("--other-n", type=int, nargs="*", default=[1000, 2000], help="sizes for row 1 alone")
    parser.add_argument("--dataset", help="real data instead: the large-scale path's rows (real_data_case)")
    parser.add_argument("--sample-size", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if args.dataset:
        data = jaxsc.data.load(args.dataset, args.data_dir)
        rows = []
        for seed in args.seeds:
            rows += real_data_case(data.x, data.y, args.sample_size, seed, args.hold, args.every)
            print([(r["schedule"], r["acc_all"], r["trace"]) for r in rows[-3:]], flush=True)
        print(write_real_table(args.dataset, len(data.y), args.sample_size, args.every, rows))
        return
    x, y, base, model, autoencoder, z0 = pretrained_problem(args.n, args.steps, args.pretrain_steps)
    z0_row = {"mean_share": mean_share(z0), "ridge_acc": ridge_accuracy(base, model, autoencoder, x, y),
              "chance": float(np.sum(np.bincount(y) ** 2) / len(y) ** 2)}
    scaled = base.finetune_lr * LARGE_LR_N / args.n
    cases = [(base.finetune_lr, base.finetune_lr, "constant"), (scaled, base.finetune_lr, "constant"),
             (base.finetune_lr, scaled, "constant"), (scaled, scaled, "constant")]
    schedules = network_schedules(args.hold)
    cases += [(base.finetune_lr, base.finetune_lr, name) for name in list(schedules)[1:]]
    rows = []
    for coef_lr, net_lr, schedule in cases:
        rows.append(rate_case(x, y, base.replace(coef_lr=coef_lr, finetune_lr=net_lr), model, autoencoder, z0,
                              args.every, schedule, schedules[schedule]))
        print({key: rows[-1][key] for key in ("schedule", "acc", "trace")}, flush=True)
    rows += restart_cases(x, y, base, model, autoencoder, z0, args.every, args.hold)
    size_rows = [size_case(n, args.steps, args.pretrain_steps, args.every) for n in args.other_n]
    print(write_table(args.n, args.steps, args.every, z0_row, rows, size_rows))


if __name__ == "__main__":
    main()
