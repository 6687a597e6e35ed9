"""Command line: ``jaxsc run`` and ``jaxsc datasets``."""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import jax
import numpy as np

from jaxsc._src import api
from jaxsc._src.cluster.kmeans import kmeans
from jaxsc._src.data.datasets import availability, load, names
from jaxsc._src.data.files import DataFileError
from jaxsc._src.methods.presets import PRESETS, get_preset
from jaxsc._src.metrics import evaluate
from jaxsc._src.models.reference_weights import REFERENCE_WEIGHTS, load_reference_weights

METHODS = {"dsc-l2": "l2", "dsc-l1": "l1"}
REPORTED = ("acc", "nmi", "ari", "purity")


def summarize(rows: list[dict]) -> dict:
    """mean, std (population) and max of every metric over seeds."""
    out = {}
    for metric in REPORTED:
        values = np.array([r[metric] for r in rows])
        out[metric] = {"mean": float(values.mean()), "std": float(values.std()), "max": float(values.max())}
    return out


def _format(metrics: dict) -> str:
    return " ".join(f"{k.upper()} {metrics[k]:.4f}" for k in REPORTED)


def raw_kmeans(x: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """The baseline: k-means (10 vmapped k-means++ restarts) on the flattened raw data."""
    return np.asarray(kmeans(x.reshape(x.shape[0], -1), n_clusters, jax.random.PRNGKey(seed)).labels)


def run_experiment(method: str, dataset: str, seeds: list[int], *, data_dir=None, init: str = "pretrain",
                   overrides: dict | None = None, verbose: bool = True) -> dict:
    """Run ``method`` on ``dataset`` for each seed; k-means on the raw data with the same seeds as a baseline."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    data = load(dataset, data_dir)
    if not data.is_image:
        raise ValueError(f"{method} needs image data; {dataset!r} is vector data")
    preset_name = dataset if dataset in PRESETS else None
    preset = get_preset(preset_name, data.x.shape[1:]).replace(**(overrides or {}))
    reference = None
    if init == "reference":
        if dataset not in REFERENCE_WEIGHTS:
            raise ValueError(f"no reference weights for {dataset!r}; available: {sorted(REFERENCE_WEIGHTS)}")
        reference = load_reference_weights(dataset, data_dir)["params"]
    rows, baseline = [], []
    for seed in seeds:
        start = time.perf_counter()
        result = api.run(data.x, data.n_clusters, preset, seed=seed, penalty=METHODS[method],
                         autoencoder_params=reference, verbose=verbose)
        scores = evaluate(data.y, result.labels)
        rows.append({"seed": seed, **scores, "seconds": time.perf_counter() - start, **{
            f"seconds_{k}": v for k, v in result.seconds.items()}})
        base = evaluate(data.y, raw_kmeans(data.x, data.n_clusters, seed))
        baseline.append({"seed": seed, **base})
        print(f"{method} {dataset} seed {seed}: {_format(scores)} ({rows[-1]['seconds']:.1f}s) | "
              f"k-means on raw data: {_format(base)}", flush=True)
    summary, base_summary = summarize(rows), summarize(baseline)
    for label, s in ((method, summary), ("raw k-means", base_summary)):
        print(f"{label:>12} mean+-std: " + " ".join(
            f"{k.upper()} {s[k]['mean']:.4f}+-{s[k]['std']:.4f}" for k in REPORTED)
            + " | max: " + " ".join(f"{k.upper()} {s[k]['max']:.4f}" for k in REPORTED), flush=True)
    return {"method": method, "dataset": dataset, "init": init, "n": int(data.x.shape[0]),
            "n_clusters": data.n_clusters, "preset": {k: (v._asdict() if hasattr(v, "_asdict") else v)
                                                      for k, v in preset.__dict__.items()},
            "seeds": rows, "summary": summary, "kmeans_raw": {"seeds": baseline, "summary": base_summary},
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}}


def _parse_override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"--set expects key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxsc", description="Deep subspace clustering in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="train a method on a dataset for several seeds and report metrics")
    run_p.add_argument("--method", default="dsc-l2", help=f"one of {sorted(METHODS)} (default dsc-l2)")
    run_p.add_argument("--dataset", default="digits", help=f"one of {names()} (default digits, no files needed)")
    run_p.add_argument("--seeds", type=int, nargs="+", default=[0])
    run_p.add_argument("--data-dir", default=None, help="data directory (default $JAXSC_DATA_DIR, then cache)")
    run_p.add_argument("--init", choices=("pretrain", "reference"), default="pretrain",
                       help="pretrain the autoencoder, or start from DSC-Net's reference weights")
    run_p.add_argument("--set", dest="overrides", type=_parse_override, action="append", default=[],
                       metavar="FIELD=VALUE", help="override a preset field, e.g. --set finetune_steps=20")
    run_p.add_argument("--out", default=None, help="write the results as JSON here")
    run_p.add_argument("--quiet", action="store_true", help="no progress lines")
    data_p = sub.add_parser("datasets", help="list the datasets and whether their files are found")
    data_p.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "datasets":
            for name, status, where in availability(args.data_dir):
                print(f"{name:16s} {status:8s} {where}")
            return 0
        result = run_experiment(args.method, args.dataset, args.seeds, data_dir=args.data_dir, init=args.init,
                                overrides=dict(args.overrides), verbose=not args.quiet)
    except (ValueError, DataFileError) as err:
        print(f"jaxsc: error: {err}", file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
