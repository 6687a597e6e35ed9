"""Rebuild the README's results table from the JSON files under ``benchmarks/results/`` (never typed by hand).

    python benchmarks/readme_table.py          # rewrite the README section between the markers
    python benchmarks/readme_table.py --check  # exit 1 when the README is out of date (also a test)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _rows() -> list[dict]:
    rows = []
    for path in sorted(RESULTS.glob("*/*.json")):
        r = json.loads(path.read_text())
        rows.append({**r, "file": path.relative_to(ROOT).as_posix()})
    return rows


def variant(r: dict) -> str:
    """The result file's tag: its name less the dataset (or protocol), the method (or ablation row) and a
    trailing init (the table's setting column shows it).

    ``orl-rgrl-script-encoder.json`` -> ``script-encoder``; ``coil20-rgrl-diag-free-reference.json`` ->
    ``diag-free``; empty for a suite's preset row (``orl-rgrl.json``, ``coil20-rgrl-reference.json``).
    """
    tag = Path(r["file"]).stem.removeprefix(f"{r.get('protocol', r['dataset'])}-")
    tag = "-".join(t for t in tag.replace(r.get("row", r["method"]), "", 1).split("-") if t)
    return "" if tag == r["init"] else tag.removesuffix(f"-{r['init']}")


def results_table() -> str:
    """One line per result file: dataset, method, setting, variant, seeds, ACC mean ± std (max), NMI mean ± std."""
    lines = ["| dataset | method | setting | variant | seeds | ACC mean ± std | ACC max | NMI mean ± std | source |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(_rows(), key=lambda r: (r["dataset"], r["method"], r["file"])):
        s = r["summary"]
        setting = f"sample {r['subsample']} of {r['n']}" if r.get("subsample") else f"{r['init']} (n={r['n']})"
        tag = variant(r)
        if "protocol" in r:  # a class-split protocol (LRSC): its name, and the ablation row as the method
            r = {**r, "dataset": r["protocol"], "method": f"{r['method']} {r['row']}"}
            setting = f"{r['init']} (n={r['n']}, external {r['n_external']})"
        lines.append(f"| {r['dataset']} | {r['method']} | {setting} | {tag} | {len(r['seeds'])} | "
                     f"{s['acc']['mean']:.4f} ± {s['acc']['std']:.4f} | {s['acc']['max']:.4f} | "
                     f"{s['nmi']['mean']:.4f} ± {s['nmi']['std']:.4f} | [{Path(r['file']).name}]({r['file']}) |")
    return "\n".join(lines)


def render(readme: str) -> str:
    """``readme`` with the section between the markers replaced by :func:`results_table`."""
    if START not in readme or END not in readme:
        raise ValueError(f"README has no {START} ... {END} section")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{results_table()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    readme_path = ROOT / "README.md"
    current = readme_path.read_text()
    wanted = render(current)
    if args.check:
        if current != wanted:
            print("README results table is out of date: run python benchmarks/readme_table.py", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
