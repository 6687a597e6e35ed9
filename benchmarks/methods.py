"""Methods side by side, next to DSC-L2 from the same run.

Suites: ``rgrl_pssc`` (rgrl, rgrl-sc, pssc, pssc-l; issue 3) and ``udll`` (issue 4). For each dataset, every
method of the suite runs 5 seeds with the presets of :data:`jaxsc.presets.PRESETS` (fixed before any
run). Methods whose presets share the architecture and pretraining settings reuse one pretrained autoencoder per
seed (e.g. rgrl, rgrl-sc, pssc, pssc-l; also dsc-l2 on coil20 and mnist-1000), so they differ only by their
fine-tuning. Each (dataset, method) writes ``benchmarks/results/<suite>/<dataset>-<method>.json``; the table
``benchmarks/results/<suite>.md`` is rebuilt from every JSON present, so runs can be split across sessions.

``--large-scale`` runs the out-of-sample path on mnist-test (sample 5000, label all 10000) and records the
process's peak resident memory.

``--set FIELD=VALUE`` (repeatable) changes preset fields for an extra row, which ``--tag`` names: it writes
``<dataset>-<method>-<tag>.json`` beside the preset's own row, never over it. The table's ``encoder`` column
tells the rows apart where the architecture differs.

``--init reference`` starts every method's fine-tune from DSC-Net's pretrained autoencoder of the dataset (where
its architecture is the preset's) instead of jaxsc's own pretraining, and writes
``<dataset>-<method>[-<tag>]-reference.json``: rows that separate the fine-tuning objective from the pretrained
network.

    JAXSC_DATA_DIR=../shared/datasets python benchmarks/methods.py --suite rgrl_pssc --datasets mnist-1000 orl coil20
    JAXSC_DATA_DIR=../shared/datasets python benchmarks/methods.py --suite rgrl_pssc --large-scale --seeds 0 1 2
    JAXSC_DATA_DIR=../shared/datasets python benchmarks/methods.py --suite udll --datasets coil20 orl
    JAXSC_DATA_DIR=../shared/datasets python benchmarks/methods.py --datasets orl --methods rgrl \\
        --set 'kernels=[3,3,3]' 'channels=[3,3,5]' --tag script-encoder
    JAXSC_DATA_DIR=../shared/datasets python benchmarks/methods.py --datasets mnist-1000 --methods rgrl rgrl-sc \\
        --set 'channels=[20,10,5]' --tag script-encoder
    JAXSC_DATA_DIR=../shared/datasets python benchmarks/methods.py --datasets coil20 --init reference
    python benchmarks/methods.py --suite udll --table-only
"""
from __future__ import annotations

import argparse
import resource
from pathlib import Path

from _tables import (RESULTS, add_common_arguments, diagonal_cell, load_rows, machine_lines, mean_std, save_result,
                     seconds_per_seed)

from jaxsc._src.cli import parse_override, run_experiment
from jaxsc.cluster import LARGE_N
from jaxsc._src.models.autoencoders import encoder_text
from jaxsc import presets

SUITES = {"rgrl_pssc": ("RGRL and PSSC next to DSC-L2", ("dsc-l2", "rgrl", "rgrl-sc", "pssc", "pssc-l"),
                        ("coil20", "orl", "eyaleb", "mnist-1000")),
          "udll": ("UDLL next to DSC-L2", ("dsc-l2", "udll"), ("coil20", "orl", "eyaleb"))}
METHODS = tuple(dict.fromkeys(m for _, methods, _ in SUITES.values() for m in methods))
DATASETS = ("coil20", "orl", "eyaleb", "mnist-1000")
# ACC as published: RGRL Table 4 (RGRL-L2), PSSC Table III (PSSC, PSSCl, DSC-L2), UDLL Table 2.
PAPER_ACC = {
    "udll": {"coil20": 0.9757, "orl": 0.8775, "eyaleb": 0.9770},
    "dsc-l2": {"coil20": 0.9368, "orl": 0.8600, "eyaleb": 0.9733, "mnist-1000": 0.7500},
    "rgrl": {"coil20": 0.9701, "orl": 0.8700, "eyaleb": 0.9753, "mnist-1000": 0.8140},
    "pssc": {"coil20": 0.9722, "orl": 0.8675, "mnist-1000": 0.8430},
    "pssc-l": {"coil20": 0.9583, "orl": 0.8525, "mnist-1000": 0.7850},
}
LARGE_SCALE_PAPER = {"rgrl": 0.9127, "pssc": 0.890}  # full 70k MNIST

REFERENCE_NOTE = (
    " `from DSC-Net's pretrained network` (files `*-reference.json`, `--init reference`): the fine-tune started from "
    "DSC-Net's pretrained autoencoder of the dataset instead of jaxsc's pretraining, the same network for every "
    "method, so these rows compare the fine-tuning objectives alone; from fixed weights the fine-tune is the same for "
    "every seed but PSSC's (its classifier head is drawn from the seed), and the seeds differ in the cluster stage.")
# What a suite's rows need said beyond the common text (written before the rows they describe were run).
SUITE_NOTES = {
    "rgrl_pssc": (
        " RGRL's presets have diag(C) = 0 since 2026-11-23; its earlier rows say `free`. `fine-tune steps`: the ORL "
        "rows of the rgrl and pssc families with 1500 steps ran the former preset (until 2026-11-24; files "
        "`*-1500-steps.json`, kept for the record), which stopped the fine-tune before it converged "
        "(`jaxsc/_src/methods/presets.py`). `*-script-encoder`: the encoder of the RGRL script for the dataset "
        "(nbShawnLu/RGRL), where it differs from RGRL's Table 3, run to measure that discrepancy: ORL's script uses "
        "DSC-Net's 3x3@3, 3x3@3, 3x3@5 (Table 3: 5x5@5, 3x3@3, 3x3@3), MNIST's 5x5@20, 3x3@10, 3x3@5 (Table 3: "
        "5x5@15, 3x3@10, 3x3@5). The presets keep the paper's encoders whatever these rows show: choosing between "
        "the two by ACC would tune on the labels. `*-bf16-state`: DSC-L2 with C's Adam moments stored in bfloat16 "
        "(`coef_state_dtype`, the memory option for large n: C and its state take 8 bytes per entry instead of 12), "
        "the same seeds and so the same pretrained autoencoders as the dsc-l2 rows, run to measure the option's "
        "effect on accuracy. `*-bf16-matmul`: DSC-L2 with C Z and its two gradient products in bfloat16 with float32 "
        "sums (`matmul_dtype`: the fast products on CPUs with bfloat16 matrix units, `speed_cpu.md`), likewise. "
        "`*-hinge-graph-1e3`: PSSC with the reference code's hinge pseudo-graph at weight 1e3, the top of its "
        "script's grid, where the term's gradient with respect to C is as large as the others' "
        "(`terms_trace_coil20-hinge.md`: 1.4e3 at weight 1 against 1e6-1e7), so that the pseudo-supervision "
        "steers C; chosen from that trace after the preset's rows, not by ACC, and not made the preset. "
        "Rows from DSC-Net's pretrained network of RGRL's family: COIL20 and EYaleB, where its encoder and pixel "
        "range are DSC-Net's, and ORL with `*-script-encoder-255`. "
        "`*-2400-steps`: COIL20's fine-tune for 20 times the script's 120 steps at its lr 1e-4 (the early stop on "
        "C's relative change still on), from DSC-Net's network, run to see where RGRL's objective goes once C has "
        "converged (in `terms_trace_coil20.md` the loss still falls at step 120 and the largest |C_ij| of a row "
        "keeps growing); the step count was fixed before the run and is not the preset. `*-800-steps`: DSC-L2 the "
        "same way (20 times DSC-Net's 40 steps, from DSC-Net's network), the comparison for the RGRL rows: does "
        "DSC-Net's objective also move C away when trained longer? `*-script-encoder-255` (ORL, from DSC-Net's "
        "network): the RGRL ORL script's encoder (DSC-Net's) at DSC-Net's 0..255 pixels, which that network "
        "needs; every term of rgrl, rgrl-sc and pssc-l scales with the square of the pixels but the 1e-4 C penalty "
        "(none in pssc-l), so the scale changes only that penalty's relative weight (pssc, whose pseudo-supervision "
        "does not scale, is not run this way). `*-ridge-start`: DSC-L2 with C starting the fine-tune at "
        "`jaxsc.train.ridge_start` (`coef_start=\"ridge\"`: the exact minimiser of its self-expression and L2 "
        "terms for the pretrained network) instead of 1e-8 everywhere, an option for large n (`speed_cpu.md`, "
        "dense C at large n), run with the same seeds and so the same pretrained autoencoders as the dsc-l2 rows "
        "to measure its effect at the presets' n; written before the runs, not made the preset. COIL20 from "
        "jaxsc's pretraining has no such row: from the ridge start its fine-tune diverged (loss NaN at step 4 of "
        "seed 0; 3840 latent columns for 1440 samples with diag(C) free, the case `ridge_start` warns of). In the "
        "large-scale table, dsc-l2 (the large-scale path's DSC-Net weights, 1 / 1 / 75) from the constant start and "
        "`*-ridge-start` from the ridge start, the same seeds and so the same samples and pretrained MLP "
        "autoencoders: the case the option is meant for (10 latent columns for 5000 samples); written before the "
        "runs. `*-lr-per-n` and `*-coef-lr-per-n` (large-scale table): dsc-l2 from the constant start with Adam's "
        "rate scaled to the sample's size, 1e-3 x 1000 / 5000 = 2e-4, for C and the network (`finetune_lr`) or for "
        "C alone (`coef_lr`), the two rules of `speed_cpu.md`'s large-n section (`speed.large_variant`), the path's "
        "30 steps unchanged, the same seeds, samples and pretrained MLP autoencoders as the dsc-l2 row; rates and "
        "steps fixed before the runs."),
    "udll": (
        " `*-no-locality`: udll's preset with the locality weight gamma set to 0 (`w_local`), i.e. DSC-Net trained "
        "with UDLL's other settings (alpha, beta, epochs, encoder, pixel range), which differ from the dsc-l2 rows' "
        "(COIL20: alpha 1000 against 75, 68 epochs against 40; ORL: encoder 5x5@5, 3x3@3, 3x3@3, pixels in [0, 1], "
        "alpha 5, beta 1): an ablation, run with the same seeds and so the same pretrained autoencoders as the udll "
        "rows, that separates the locality term's effect from that of the other settings; written before it ran. "
        "`*-dsc-settings`: the converse, DSC-Net's preset of the dataset (the dsc-l2 rows' encoder, pixel range, "
        "weights and epochs, so also their pretrained autoencoders) plus UDLL's locality term on its prior graph "
        "(k = 3), gamma set by one rule fixed before the run: UDLL's ratio gamma / alpha times DSC-Net's alpha "
        "(COIL20: 19 / 1000 x 75 = 1.425; ORL: 8 / 5 x 0.2 = 0.32; the ratio does not depend on the pixel range, "
        "both terms scale with Z^2): does the locality prior help DSC-Net at DSC-Net's own settings?"),
}


def solver_used(solver: str, n: int) -> str:
    """The cluster-stage solver a run used (``auto`` resolved at its sample size)."""
    if solver != "auto":
        return solver
    return "auto: iterative (approximate)" if n > LARGE_N else "auto: dense"


def encoder_cell(preset: dict) -> str:
    """The conv encoder of a saved preset, layer by layer: ``5x5@5, 3x3@3, 3x3@3``."""
    return encoder_text(preset["kernels"], preset["channels"])


def method_cell(r: dict) -> str:
    """The method, what a row ran narrower than float32 (C's Adam moments, the products of C Z), C's start where
    it is not the constant one, C's learning rate where it is not the network's, whether it started from DSC-Net's
    pretrained network and where its learning rate, pseudo-supervision or locality weight differs from the method's
    preset (the large-scale path's, for rows that ran it)."""
    notes = [f"{what} in {r['preset'][field]}" for field, what in (("coef_state_dtype", "C's Adam moments"),
                                                                   ("matmul_dtype", "C Z products"))
             if r["preset"].get(field)]
    if r["preset"].get("coef_start", "constant") != "constant":
        notes.append(f"C from the {r['preset']['coef_start']} start")
    if r["preset"].get("coef_lr") is not None:
        notes.append(f"C's learning rate {r['preset']['coef_lr']:g}")
    if r.get("init") == "reference":
        notes.append("from DSC-Net's pretrained network")
    preset = None
    if r.get("subsample"):
        preset = presets.large_scale_preset(r["method"], r["n_clusters"], r["subsample"])
    elif r.get("dataset") in presets.PRESETS[presets.METHODS[r["method"]].family]:
        preset = presets.get_preset(r["dataset"], (), r["method"])
    if preset is not None:
        if r["preset"].get("finetune_lr", preset.finetune_lr) != preset.finetune_lr:
            notes.append(f"learning rate {r['preset']['finetune_lr']:g}")
        if r["preset"].get("w_graph") and \
                (r["preset"]["graph_form"], r["preset"]["w_graph"]) != (preset.graph_form, preset.w_graph):
            notes.append(f"{r['preset']['graph_form']} pseudo-graph at weight {r['preset']['w_graph']:g}")
        if r["preset"].get("w_local", 0.0) != preset.w_local:
            notes.append(f"locality weight {r['preset']['w_local']:g}")
    return r["method"] + (f" ({', '.join(notes)})" if notes else "")


def write_table(out_dir: Path, suite: str) -> Path:
    rows = load_rows(out_dir / suite)
    small = [r for r in rows if not r.get("subsample")]
    large = [r for r in rows if r.get("subsample")]
    lines = [f"# {SUITES[suite][0]}", "",
             f"Generated by `benchmarks/methods.py --suite {suite}` from `benchmarks/results/{suite}/*.json`. "
             "Mean ± std (population) over seeds, max separately. Hyper-parameters from `jaxsc.presets.PRESETS`, fixed "
             "before the runs by the label-free rule in `jaxsc/_src/methods/presets.py` (the papers grid-searched "
             "theirs by ground-truth accuracy). All methods of one dataset use the same seeds, and methods with equal "
             "pretraining settings share the pretrained autoencoder of each seed within a process (pretraining is "
             "seeded, so a later process recomputes the same one); each JSON records its date. NMI: scikit-learn's "
             "default. `paper` is the published ACC (a best run of a per-dataset grid search). `diag(C)`: `0` where "
             "the run had the constraint diag(C) = 0 (DSC-Net has none). `encoder`: kernel x kernel @ channels per "
             "layer. Files with a tag (`<dataset>-<method>-<tag>.json`) are extra rows with changed preset fields "
             "(`--set`)." + SUITE_NOTES[suite] +
             (REFERENCE_NOTE if any(r.get("init") == "reference" for r in small) else ""),
             "",
             "| dataset | method | encoder | diag(C) | seeds | ACC mean ± std | ACC max | NMI mean ± std | "
             "purity mean ± std | paper ACC | fine-tune steps | wall s/seed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = lambda r: (DATASETS.index(r["dataset"]) if r["dataset"] in DATASETS else 99,
                       METHODS.index(r["method"]) if r["method"] in METHODS else 99)
    for r in sorted(small, key=order):
        s = r["summary"]
        paper = PAPER_ACC.get(r["method"], {}).get(r["dataset"])
        secs = seconds_per_seed(r)
        lines.append(f"| {r['dataset']} (n={r['n']}) | {method_cell(r)} | {encoder_cell(r['preset'])} | "
                     f"{diagonal_cell(r)} | {len(r['seeds'])} | "
                     f"{mean_std(s, 'acc')} | "
                     f"{s['acc']['max']:.4f} | {mean_std(s, 'nmi')} | {mean_std(s, 'purity')} | "
                     f"{'%.4f' % paper if paper else '-'} | {r['preset']['finetune_steps']} | {secs:.0f} |")
    if large:
        lines += ["", "## Large scale: out-of-sample path on mnist-test", "",
                  "Train on a random sample of m points (MLP autoencoder D-500-500-2000-10, 50 pretraining epochs, "
                  "30 fine-tune epochs), spectral labels for the sample, 1-NN in latent space for the rest. "
                  "Paper numbers are on the full 70k MNIST (training images are not in shared/). Peak memory is "
                  "the process's peak resident set size on the CPU (the whole benchmark process, of the invocation "
                  "that ran the row's last seeds).", "",
                  "| dataset | method | diag(C) | m | N | seeds | ACC mean ± std | ACC max | NMI mean ± std | "
                  "paper ACC (70k) | wall s/seed | peak RSS GiB | cluster solver |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(large, key=order):
            s = r["summary"]
            secs = seconds_per_seed(r)
            paper = LARGE_SCALE_PAPER.get(r["method"])
            lines.append(f"| {r['dataset']} | {method_cell(r)} | {diagonal_cell(r)} | {r['subsample']} | {r['n']} | "
                         f"{len(r['seeds'])} | "
                         f"{mean_std(s, 'acc')} | {s['acc']['max']:.4f} | {mean_std(s, 'nmi')} | "
                         f"{'%.4f' % paper if paper else '-'} | {secs:.0f} | {r['peak_rss_gib']:.2f} | "
                         f"{solver_used(r['preset']['post']['solver'], r['subsample'])} |")
    lines += machine_lines(rows)
    path = out_dir / f"{suite}.md"
    path.write_text("\n".join(lines))
    return path


def _save(out_dir: Path, suite: str, result: dict, name: str) -> None:
    save_result(result, out_dir / suite / f"{name}.json")
    print(f"table: {write_table(out_dir, suite)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), default="rgrl_pssc")
    parser.add_argument("--datasets", nargs="+", default=None, help="default: the suite's datasets")
    parser.add_argument("--methods", nargs="+", default=None, help="default: the suite's methods")
    add_common_arguments(parser)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--large-scale", action="store_true")
    parser.add_argument("--sample-size", type=int, default=5000)
    parser.add_argument("--set", dest="overrides", type=parse_override, nargs="+", default=[],
                        metavar="FIELD=VALUE", help="preset fields of an extra row (needs --tag)")
    parser.add_argument("--tag", default=None, help="names the extra row's file: <dataset>-<method>-<tag>.json")
    parser.add_argument("--init", choices=("pretrain", "reference"), default="pretrain",
                        help="reference: fine-tune from DSC-Net's pretrained autoencoder (default: jaxsc's own)")
    args = parser.parse_args()
    if bool(args.overrides) != bool(args.tag):
        parser.error("--set and --tag go together: an extra row needs a name, and a name needs changed fields")
    overrides = dict(args.overrides)
    suffix = (f"-{args.tag}" if args.tag else "") + ("-reference" if args.init == "reference" else "")
    _, suite_methods, suite_datasets = SUITES[args.suite]
    (args.out_dir / args.suite).mkdir(parents=True, exist_ok=True)
    if args.large_scale:
        if args.init == "reference":
            parser.error("--init reference: DSC-Net's pretrained networks are conv autoencoders; the large-scale "
                         "path trains an MLP autoencoder")
        for method in (args.methods or ("rgrl", "pssc")):
            result = run_experiment(method, "mnist-test", args.seeds, data_dir=args.data_dir, overrides=overrides,
                                    subsample=args.sample_size, verbose=not args.quiet)
            result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
            _save(args.out_dir, args.suite, result, f"mnist-test-{method}-m{args.sample_size}{suffix}")
    elif not args.table_only:
        for dataset in args.datasets or suite_datasets:
            pretrained: dict = {}
            for method in args.methods or suite_methods:
                result = run_experiment(method, dataset, args.seeds, data_dir=args.data_dir, init=args.init,
                                        pretrained=pretrained, overrides=overrides, verbose=not args.quiet)
                _save(args.out_dir, args.suite, result, f"{dataset}-{method}{suffix}")
    print(write_table(args.out_dir, args.suite).read_text())


if __name__ == "__main__":
    main()
