"""Which loss terms move C: a label-free trace of DSC-family fine-tunes (issue 3: PSSC's collapse on EYaleB).

One seed, one dataset; each method fine-tunes from the autoencoder its benchmark row pretrains (same seed, same
pretraining settings: ``benchmarks/methods.py`` reuses it) for the preset's step count (``--steps``: another),
Adam's state carried on. At ``--reads`` evenly spaced steps (:func:`jaxsc.fit`'s ``stop_check``) the trace prints,
for each term of the method's loss, its weighted value w L and the Frobenius norm of its gradient with respect to
C, ||d(w L)/dC||_F: the term that dominates that norm is the one that shapes C (Adam divides each entry's summed
gradient by its running size, so a term whose gradient is a small fraction of the sum barely changes C's path).
Then C itself: the mean |C_ij|, the mean over rows of max_j |C_ij|, the fraction of negative entries; for PSSC's
classifier head, the mean of max_k P_ik, the fraction of samples at or above the pseudo-label threshold (0.8) and
how many clusters argmax P uses. ACC of the preset's cluster stage on the current C comes last, for the reader
only: no setting was chosen from it.
Writes ``benchmarks/results/terms_trace_<dataset>.md`` (with ``--tag T``: ``terms_trace_<dataset>-<T>.md``, for
a trace with every method's preset changed by ``--set F=V``, which needs a tag, or of other methods).

    JAXSC_DATA_DIR=../shared/datasets python benchmarks/terms_trace.py --dataset eyaleb --methods pssc rgrl \\
        --steps 300
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _tables import RESULTS, machine_lines

from jaxsc import data, metrics
from jaxsc._src.api import build_autoencoder, build_objective, cluster, finetune_data, fit, pretrain
from jaxsc._src.cli import _PRETRAIN_FIELDS, _machine, parse_override
from jaxsc._src.methods.presets import METHODS, PRESETS, get_preset
from jaxsc._src.models.classifier import classifier_probs
from jaxsc._src.models.self_expression import without_diagonal


def term_gradients(objective, x):
    """A jitted ``params -> {term: (w L, ||d(w L)/dC||_F)}`` over the terms ``objective.loss`` returns. Under
    diag(C) = 0 the gradient's diagonal is left out: the training loop projects it away, it never moves C."""
    weights = objective.term_weights()

    def weighted(params):
        return {k: weights[k] * v for k, v in objective.loss(params, x)[1].items()}

    def trace(params):
        values = weighted(params)
        out = {}
        for name in values:
            grad = jax.grad(lambda coef: weighted({**params, "coef": coef})[name])(params["coef"])
            if objective.zero_diagonal:
                grad = without_diagonal(grad)
            out[name] = (values[name], jnp.linalg.norm(grad))
        return out

    return jax.jit(trace)


def coefficient_row(params, model, x, preset) -> dict:
    """Label-free statistics of C (its diagonal is 0 under diag(C) = 0) and of PSSC's head (``head confident``:
    the share of samples whose largest probability reaches the pseudo-label threshold)."""
    coef = np.asarray(params["coef"])
    size = np.abs(coef)
    row = {"mean |C|": f"{size.mean():.2e}", "row max |C|": f"{size.max(1).mean():.2e}",
           "C < 0": f"{(coef < 0).mean():.2f}"}
    if "head" in params:
        z = model.apply({"params": params["autoencoder"]}, x, method="encode")
        probs = np.asarray(classifier_probs(params["head"], z))
        confident = probs.max(1) >= preset.label_threshold
        row.update({"head max p": f"{probs.max(1).mean():.3f}", "head confident": f"{confident.mean():.2f}",
                    "head clusters": str(len(np.unique(probs.argmax(1))))})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="eyaleb")
    parser.add_argument("--methods", nargs="+", default=["pssc", "rgrl"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="fine-tune steps (default: each preset's)")
    parser.add_argument("--reads", type=int, default=6, help="trace rows per method, evenly spaced")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--set", dest="overrides", type=parse_override, nargs="+", default=[],
                        metavar="FIELD=VALUE", help="preset fields changed for every method (needs --tag)")
    parser.add_argument("--tag", default=None, help="names the file: terms_trace_<dataset>-<tag>.md (a changed "
                        "trace, or more methods beside a file already written)")
    args = parser.parse_args()
    if args.overrides and not args.tag:
        parser.error("--set needs --tag: a changed trace needs its own file name")
    suffix = f"-{args.tag}" if args.tag else ""
    ds = data.load(args.dataset, data_dir=args.data_dir)
    pretrained, traces, names = {}, [], []
    for method in args.methods:
        known = args.dataset in PRESETS[METHODS[method].family]  # else derived from the sample shape
        preset = get_preset(args.dataset if known else None, ds.x.shape[1:], method).replace(**dict(args.overrides))
        key = tuple(getattr(preset, f) for f in _PRETRAIN_FIELDS)
        if key not in pretrained:
            pretrained[key] = pretrain(ds.x, preset, seed=args.seed, verbose=False)
        model = build_autoencoder(preset, ds.x.shape[1:])
        samples = jnp.asarray(ds.x * preset.data_scale)
        terms = term_gradients(build_objective(preset, model), finetune_data(preset, model, pretrained[key], samples))
        steps = preset.finetune_steps if args.steps is None else args.steps
        every, rows = -(-steps // args.reads), []  # reads at every, 2 every, ... and at the last step

        def check(params):  # called during this iteration's fit only: the loop's names are this method's
            row = {"method": method, "step": str(min(every * (len(rows) + 1), steps))}  # the last read: at the end
            for name, (value, norm) in terms(params).items():
                row[name] = f"{float(value) + 0.0:.3g} ({float(norm):.2g})"  # + 0.0: no "-0"
                if name not in names:
                    names.append(name)
            row.update(coefficient_row(params, model, samples, preset))
            labels = np.asarray(cluster(params["coef"], ds.n_clusters, preset.post, seed=args.seed).labels)
            row["ACC"] = f"{metrics.accuracy(ds.y, labels):.4f}"
            rows.append(row)
            print(row, flush=True)
            return False

        fit(ds.x, preset, pretrained[key], n_clusters=ds.n_clusters, seed=args.seed, steps=steps,
            log_every=every, stop_check=check, verbose=False)
        traces.extend(rows)
    columns = (["method", "step"] + names + ["mean |C|", "row max |C|", "C < 0", "head max p", "head confident",
                                             "head clusters", "ACC"])
    changed = "".join(f", {k} = {v}" for k, v in args.overrides)
    lines = [f"# Which terms move C: {args.dataset}, seed {args.seed}{changed}", "",
             "Generated by `benchmarks/terms_trace.py` (module docstring: what is measured and why). Each term "
             "column: the weighted term w L and, in brackets, ||d(w L)/dC||_F. ACC is for the reader only.", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row.get(c, "-") for c in columns) + " |" for row in traces]
    text = "\n".join(lines + machine_lines([{"machine": _machine()}])[:3])
    (RESULTS / f"terms_trace_{args.dataset}{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
