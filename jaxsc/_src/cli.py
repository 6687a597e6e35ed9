"""Command line: ``jaxsc run`` and ``jaxsc datasets``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsc._src import api
from jaxsc._src.cluster.kmeans import kmeans
from jaxsc._src.compile_ahead import CompiledAhead
from jaxsc._src.data.datasets import Dataset, availability, load, names
from jaxsc._src.data.files import DataFileError, user_cache_dir
from jaxsc._src.machine import cpu_description
from jaxsc._src.methods.out_of_sample import encode_in_batches, fit_large_scale, large_scale_preset
from jaxsc._src.methods.presets import METHODS, PRESETS, get_preset
from jaxsc._src.methods.lrsc import LRSCPreset, fit_lrsc, teacher_features
from jaxsc._src.methods.sai import SAI_VARIANTS, fit_sai, get_sai_preset, pretrain_dae
from jaxsc._src.metrics import evaluate
from jaxsc._src.models.autoencoders import encoder_text
from jaxsc._src.models.reference_weights import REFERENCE_WEIGHTS, conv_architecture, load_reference_weights

REPORTED = ("acc", "nmi", "ari", "purity")
SAI_METHODS = {f"sai-{variant}": variant for variant in SAI_VARIANTS}
LRSC_METHODS = {"lrsc": "l2", "lrsc-l1": "l1"}
ALL_METHODS = sorted(METHODS) + sorted(SAI_METHODS) + sorted(LRSC_METHODS)
COMPILE_CACHE_ENV = "JAXSC_COMPILE_CACHE"
MIN_COMPILE_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


def compile_cache_dir(choice: str | None = None) -> Path | None:
    """The directory of jax's persistent compilation cache for ``jaxsc run``: ``choice`` (``--compile-cache``),
    else ``$JAXSC_COMPILE_CACHE``, else jax's own ``$JAX_COMPILATION_CACHE_DIR``, else ``<user cache dir>/xla``;
    ``None`` (no cache) where the first of these that is set says ``off``."""
    for value in (choice, os.environ.get(COMPILE_CACHE_ENV), jax.config.jax_compilation_cache_dir):
        if value:
            return None if value == "off" else Path(value).expanduser()
    return user_cache_dir() / "xla"


def _use_compile_cache(cache: Path | None) -> None:
    """Point jax's persistent compilation cache at ``cache``, keeping every compilation unless
    ``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise (called before anything compiles: jax decides
    at a process's first compilation); a directory that cannot be created is reported and skipped."""
    if cache is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"jaxsc: no compilation cache ({err}); --compile-cache DIR or off", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(cache))
    if MIN_COMPILE_TIME_ENV not in os.environ:  # jax's default, 1 s, leaves out most of a run's compilations
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def summarize(rows: list[dict], metrics: tuple[str, ...] = REPORTED) -> dict:
    """mean, std (population) and max of every metric over seeds."""
    out = {}
    for metric in metrics:
        values = np.array([r[metric] for r in rows])
        out[metric] = {"mean": float(values.mean()), "std": float(values.std()), "max": float(values.max())}
    return out


def _machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu": cpu_description(),
            "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}


def _print_summary(label: str, summary: dict) -> None:
    """``label mean+-std: ... | max: ...`` over seeds, for the metrics in ``REPORTED``."""
    print(f"{label:>12} mean+-std: " + " ".join(f"{k.upper()} {summary[k]['mean']:.4f}+-{summary[k]['std']:.4f}"
                                                for k in REPORTED)
          + " | max: " + " ".join(f"{k.upper()} {summary[k]['max']:.4f}" for k in REPORTED), flush=True)


def _format(metrics: dict) -> str:
    return " ".join(f"{k.upper()} {metrics[k]:.4f}" for k in REPORTED)


class RawKMeans:
    """The baseline: k-means (10 vmapped k-means++ restarts) on the flattened raw data ``x``, compiled in a
    background thread from construction on (:class:`jaxsc._src.compile_ahead.CompiledAhead`), so that the
    compilation overlaps the first seed's training."""

    def __init__(self, x: np.ndarray, n_clusters: int):
        self.x = jnp.asarray(x.reshape(x.shape[0], -1))
        self.kmeans = CompiledAhead(kmeans, dict(x=self.x, key=jax.random.PRNGKey(0)), k=n_clusters)

    def labels(self, seed: int) -> np.ndarray:
        return np.asarray(self.kmeans(x=self.x, key=jax.random.PRNGKey(seed)).labels)


def _preset_json(preset) -> dict:
    return {k: (v._asdict() if hasattr(v, "_asdict") else v) for k, v in preset.__dict__.items()}


def _save_figures(out_dir: str, prefix: str, data, preset, result) -> None:
    from jaxsc._src.plot import save_run_figures

    if isinstance(result, api.RunResult):
        model = api.build_autoencoder(preset, data.x.shape[1:])
        z = encode_in_batches(model, result.params["autoencoder"], data.x * preset.data_scale)
        paths = save_run_figures(out_dir, y_true=data.y, labels=result.labels, affinity=result.affinity,
                                 history=result.history, z=z, prefix=prefix)
    else:  # the large-scale path has no N x N affinity
        paths = save_run_figures(out_dir, y_true=data.y, labels=result.labels, prefix=prefix)
    print("figures: " + ", ".join(str(p) for p in paths), flush=True)


_PRETRAIN_FIELDS = ("kernels", "channels", "mlp_hidden", "mlp_latent", "pretrain_steps", "pretrain_lr",
                    "pretrain_batch", "data_scale")


def run_experiment(method: str, dataset: str, seeds: list[int], *, data_dir=None, init: str = "pretrain",
                   overrides: dict | None = None, subsample: int | None = None, pretrained: dict | None = None,
                   plots: str | None = None, external: str | None = None, target_classes: list | None = None,
                   verbose: bool = True) -> dict:
    """Run ``method`` on ``dataset`` for each seed; k-means on the raw data with the same seeds as a baseline.

    ``subsample``: the large-scale path (train on that many random points, label the rest by 1-NN in latent
    space). ``pretrained``: a dict shared between calls in which pretrained autoencoders are kept, keyed by
    dataset, seed and the preset's architecture and pretraining fields, so methods of one family that differ only
    in their fine-tuning reuse one pretraining per seed (LRSC rows that distil: one teacher per seed). ``plots``:
    a directory for each seed's figures
    (:func:`jaxsc.plot.save_run_figures`). ``external`` / ``target_classes``: LRSC's external data, another
    dataset and/or the classes of ``dataset`` kept as the target (the other classes become external data).
    """
    if method not in ALL_METHODS:
        raise ValueError(f"unknown method {method!r}; known: {ALL_METHODS}")
    if init == "reference" and (method in LRSC_METHODS or method in SAI_METHODS):
        raise ValueError(f"--init reference starts the DSC-family methods from DSC-Net's pretrained network; {method} "
                         "trains its own networks (pretraining is part of the method)")
    data = load(dataset, data_dir)
    if method in LRSC_METHODS or target_classes is not None:
        if method not in LRSC_METHODS:
            raise ValueError("--target-classes and --external are LRSC options")
        data, ext = split_external(data, target_classes, None if external is None else load(external, data_dir))
        return _run_lrsc(method, data, ext, seeds, overrides or {}, pretrained, verbose)
    if method in SAI_METHODS:
        return _run_sai(method, data, seeds, overrides or {}, pretrained, verbose)
    if subsample is not None:
        preset = large_scale_preset(method, data.n_clusters, subsample).replace(**(overrides or {}))
    else:
        preset_name = dataset if dataset in PRESETS[METHODS[method].family] else None
        preset = get_preset(preset_name, data.x.shape[1:], method).replace(**(overrides or {}))
    reference = None
    if init == "reference":
        if dataset not in REFERENCE_WEIGHTS or subsample is not None:
            raise ValueError(f"no reference weights for {dataset!r}; available: {sorted(REFERENCE_WEIGHTS)} "
                             "(conv networks only, without --subsample)")
        reference = load_reference_weights(dataset, data_dir)["params"]
        _check_reference_fits(reference, dataset, method, preset)
    # From fixed reference weights the fine-tune is the same for every seed (only a classifier head would draw
    # from the seed), so the seeds share it (kept in ``pretrained`` across calls) and differ in the cluster stage.
    share_fit = reference is not None and preset.w_graph == 0 and preset.w_label == 0
    cache = {} if pretrained is None else pretrained
    fit_key = ("reference fit", dataset, preset)
    rows, baseline, raw_kmeans = [], [], RawKMeans(data.x, data.n_clusters)
    for seed in seeds:
        start = time.perf_counter()
        if subsample is not None:
            result = fit_large_scale(data.x, data.n_clusters, method, sample_size=subsample, seed=seed,
                                     preset=preset, verbose=verbose)
        else:
            params = reference
            key = (dataset, seed) + tuple(getattr(preset, f) for f in _PRETRAIN_FIELDS)
            if params is None and pretrained is not None and key in pretrained:
                params = pretrained[key]
            elif params is None and pretrained is not None:
                params = pretrained[key] = api.pretrain(data.x, preset, seed=seed, verbose=verbose)
            result = api.run(data.x, data.n_clusters, preset, seed=seed, autoencoder_params=params,
                             fitted=cache.get(fit_key) if share_fit else None, verbose=verbose)
            if share_fit:
                reused = fit_key in cache
                cache[fit_key] = result.fitted
        if plots is not None:
            _save_figures(plots, f"{dataset}-{method}-seed{seed}-", data, preset, result)
        scores = evaluate(data.y, result.labels)
        rows.append({"seed": seed, **scores, "seconds": time.perf_counter() - start,
                     **{f"seconds_{k}": v for k, v in result.seconds.items()},
                     **({"fit_reused": reused} if share_fit else {})})
        base = evaluate(data.y, raw_kmeans.labels(seed))
        baseline.append({"seed": seed, **base})
        print(f"{method} {dataset} seed {seed}: {_format(scores)} ({rows[-1]['seconds']:.1f}s) | "
              f"k-means on raw data: {_format(base)}", flush=True)
    summary, base_summary = summarize(rows), summarize(baseline)
    _print_summary(method, summary)
    _print_summary("raw k-means", base_summary)
    return {"method": method, "dataset": dataset, "init": init, "subsample": subsample, "n": int(data.x.shape[0]),
            "n_clusters": data.n_clusters, "preset": _preset_json(preset),
            "seeds": rows, "summary": summary, "kmeans_raw": {"seeds": baseline, "summary": base_summary},
            "machine": _machine()}


def _check_reference_fits(reference: dict, dataset: str, method: str, preset) -> None:
    """Raise where DSC-Net's network for ``dataset`` does not fit ``preset``: another encoder, or pixels scaled
    otherwise than DSC-Net's script trained it on (its dsc preset's ``data_scale``), with the ``--set`` that fits."""
    kernels, channels = conv_architecture(reference)
    scale = PRESETS["dsc"][dataset].data_scale
    if (tuple(preset.kernels), tuple(preset.channels), preset.data_scale) != (kernels, channels, scale):
        listed = lambda values: ",".join(map(str, values))
        raise ValueError(
            f"DSC-Net's pretrained {dataset} network ({encoder_text(kernels, channels)}, pixels x {scale:g}) does not "
            f"fit the {method} preset for {dataset} ({encoder_text(preset.kernels, preset.channels)}, pixels x "
            f"{preset.data_scale:g}); to fine-tune it anyway: --set 'kernels=[{listed(kernels)}]' "
            f"'channels=[{listed(channels)}]' data_scale={scale:g}")


TRACED = ("kl", "sharpness", "smallest", "largest", "embedding_norm")


def _run_sai(method: str, data, seeds, overrides: dict, pretrained: dict | None, verbose: bool) -> dict:
    """SAI for each seed; DAE+k-means (the initialisation it starts from) is the baseline reported beside it.
    ``pretrained`` shares the DAE of each seed between the variants. Each seed's row keeps the label-free
    :class:`jaxsc.SAIEpoch` fields ``TRACED`` at the start and at the end (``trace``)."""
    preset = get_sai_preset(data.name).replace(**overrides)
    rows, baseline = [], []
    for seed in seeds:
        start = time.perf_counter()
        key = (data.name, seed, preset.encoder, preset.latent_dim, preset.hidden, preset.corruption,
               preset.pretrain_epochs, preset.tfidf, preset.top_terms)
        params = None
        if pretrained is not None:
            if key not in pretrained:
                pretrained[key] = pretrain_dae(data.x, preset, seed=seed, verbose=verbose)
            params = pretrained[key]
        result = fit_sai(data.x, data.n_clusters, SAI_METHODS[method], preset, seed=seed, autoencoder_params=params,
                         verbose=verbose)
        scores, base = evaluate(data.y, result.labels), evaluate(data.y, result.kmeans_labels)
        first, last = result.trace[0], result.trace[-1]
        rows.append({"seed": seed, **scores, "epochs": result.epochs, "seconds": time.perf_counter() - start,
                     **{f"seconds_{k}": v for k, v in result.seconds.items()},
                     "trace": {field: [getattr(first, field), getattr(last, field)] for field in TRACED}})
        baseline.append({"seed": seed, **base})
        print(f"{method} {data.name} seed {seed}: {_format(scores)} ({result.epochs} epochs, "
              f"{rows[-1]['seconds']:.1f}s) | DAE+k-means: {_format(base)}", flush=True)
    with_precision = REPORTED + ("precision",)
    summary, base_summary = summarize(rows, with_precision), summarize(baseline, with_precision)
    _print_summary(method, summary)
    _print_summary("DAE+k-means", base_summary)
    return {"method": method, "dataset": data.name, "init": "dae", "subsample": None, "n": int(data.x.shape[0]),
            "n_clusters": data.n_clusters, "preset": dataclasses.asdict(preset), "seeds": rows, "summary": summary,
            "dae_kmeans": {"seeds": baseline, "summary": base_summary},
            "machine": _machine()}


def split_external(data, target_classes, external=None):
    """``(target, external)`` Datasets: the ``target_classes`` of ``data`` (relabelled 0..K-1) and the rest of it,
    plus all of ``external`` when given (its labels offset so they stay distinct)."""
    if target_classes is None and external is None:
        raise ValueError("LRSC needs external data: give --external DATASET and/or --target-classes")
    keep = np.ones(len(data.y), bool) if target_classes is None else np.isin(data.y, target_classes)
    if not keep.any():
        raise ValueError(f"no sample of {data.name} has a class in {target_classes}")
    target = Dataset(data.x[keep], np.unique(data.y[keep], return_inverse=True)[1].astype(np.int32),
                     f"{data.name}[{','.join(map(str, sorted(set(data.y[keep].tolist()))))}]")
    parts_x, parts_y = [data.x[~keep]], [data.y[~keep]]
    if external is not None:
        parts_x.append(external.x)
        parts_y.append(external.y + (data.y.max() + 1))
    ext = Dataset(np.concatenate(parts_x), np.concatenate(parts_y).astype(np.int32), "external")
    if len(ext.y) == 0:
        raise ValueError("the external data is empty")
    return target, ext


def _run_lrsc(method: str, data, ext, seeds, overrides: dict, cache: dict | None, verbose: bool) -> dict:
    preset = LRSCPreset.for_penalty(LRSC_METHODS[method]).replace(**overrides)
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        teacher, shared = None, {}
        if preset.distill and cache is not None:
            key = ("teacher", data.name, data.x.shape, ext.x.shape, seed, preset.teacher_steps, preset.teacher_batch)
            reused = key in cache
            if not reused:
                cache[key] = (teacher_features(ext.x, ext.y, data.x, steps=preset.teacher_steps,
                                               batch=preset.teacher_batch, seed=seed, verbose=verbose),
                              time.perf_counter() - start)
            teacher = cache[key][0]
            # the teacher's cost is recorded in every row that uses it; the wall time only where it was trained
            shared = {"seconds_teacher": cache[key][1], "teacher_reused": reused}
        result = fit_lrsc(data.x, data.n_clusters, ext.x, ext.y, preset, seed=seed, teacher=teacher,
                          verbose=verbose)
        scores = evaluate(data.y, result.labels)
        rows.append({"seed": seed, **scores, "seconds": time.perf_counter() - start,
                     **{f"seconds_{k}": v for k, v in result.seconds.items()}, **shared, **result.diagnostics})
        print(f"{method} {data.name} seed {seed}: {_format(scores)} ({rows[-1]['seconds']:.1f}s)", flush=True)
    summary = summarize(rows)
    _print_summary(method, summary)
    return {"method": method, "dataset": data.name, "init": "lrsc", "subsample": None, "n": int(data.x.shape[0]),
            "n_external": int(ext.x.shape[0]), "n_clusters": data.n_clusters,
            "preset": {k: (v._asdict() if hasattr(v, "_asdict") else v) for k, v in dataclasses.asdict(preset).items()},
            "seeds": rows, "summary": summary,
            "machine": _machine()}


def _parse_classes(text: str) -> list[int]:
    """"0-4" or "0,1,2" -> class list."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return out


def parse_override(text: str) -> tuple[str, object]:
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
    run_p.add_argument("--method", default="dsc-l2", help=f"one of {ALL_METHODS} (default dsc-l2); see `jaxsc methods`")
    run_p.add_argument("--dataset", default="digits", help=f"one of {names()} (default digits, no files needed)")
    run_p.add_argument("--seeds", type=int, nargs="+", default=[0])
    run_p.add_argument("--data-dir", default=None, help="data directory (default $JAXSC_DATA_DIR, then cache)")
    run_p.add_argument("--init", choices=("pretrain", "reference"), default="pretrain",
                       help="pretrain the autoencoder, or start from DSC-Net's reference weights")
    run_p.add_argument("--set", dest="overrides", type=parse_override, action="extend", nargs="+", default=[],
                       metavar="FIELD=VALUE", help="override preset fields, e.g. --set finetune_steps=20 "
                       "'kernels=[3,3]' (repeatable)")
    run_p.add_argument("--subsample", type=int, default=None, metavar="M",
                       help="large-scale path: train on M random samples (MLP autoencoder), label the rest by "
                            "nearest neighbour in latent space")
    run_p.add_argument("--plots", default=None, metavar="DIR",
                       help="save each seed's figures (affinity, confusion, training curve, embedding) as PNGs here")
    run_p.add_argument("--external", default=None, metavar="DATASET", help="LRSC: labelled external dataset")
    run_p.add_argument("--target-classes", type=_parse_classes, default=None, metavar="CLASSES",
                       help="LRSC: classes of --dataset kept as the target, e.g. 0-4 (the rest become external data)")
    run_p.add_argument("--out", default=None, help="write the results as JSON here")
    run_p.add_argument("--quiet", action="store_true", help="no progress lines")
    run_p.add_argument("--compile-cache", default=None, metavar="DIR",
                       help="keep the compiled steps and cluster stage in jax's persistent cache here, so a later "
                            f"run of the same shapes loads them instead of compiling (default ${COMPILE_CACHE_ENV}, "
                            "then $JAX_COMPILATION_CACHE_DIR, then the user cache dir's xla/); off: no cache")
    sub.add_parser("methods", help="list the methods and their datasets with presets")
    data_p = sub.add_parser("datasets", help="list the datasets and whether their files are found")
    data_p.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "methods":
            for name, spec in METHODS.items():
                print(f"{name:10s} {spec.description}; presets: {', '.join(sorted(PRESETS[spec.family]))}")
            for name, penalty in LRSC_METHODS.items():
                print(f"{name:10s} LRSC-{penalty.upper()}: meta-learning, teacher distillation and InfoNCE with "
                      "external data (--external / --target-classes)")
            for name, variant in SAI_METHODS.items():
                print(f"{name:10s} SAI ({variant.upper()}): KL between the Euclidean-hinge soft assignment and "
                      f"the {SAI_VARIANTS[variant]}-distance one; no C")
            return 0
        if args.command == "datasets":
            for name, status, where in availability(args.data_dir):
                print(f"{name:16s} {status:8s} {where}")
            return 0
        _use_compile_cache(compile_cache_dir(args.compile_cache))
        result = run_experiment(args.method, args.dataset, args.seeds, data_dir=args.data_dir, init=args.init,
                                overrides=dict(args.overrides), subsample=args.subsample,
                                plots=args.plots, external=args.external, target_classes=args.target_classes,
                                verbose=not args.quiet)
    except (ValueError, DataFileError, MemoryError) as err:
        print(f"jaxsc: error: {err}", file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
