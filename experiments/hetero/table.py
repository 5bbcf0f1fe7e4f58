"""Tables of `gnnagg run hetero` results.

    python experiments/hetero/table.py                 # results/*.json: the final table
    python experiments/hetero/table.py FILE.json ...   # the same, from these files
    python experiments/hetero/table.py --ablation results/ablation/*.json

The final table has one row per model and setting (LATTE-1, LATTE-2, HAN,
HGT, RGCN, HeteroConv-SAGE; transductive, then inductive) and, per data set,
the test Macro- and Micro-F1 (%) at the selected epoch, mean +- std over
seeds; a second table gives the seconds per run and epochs run. With
``--ablation`` each file is one variant (named after the file) and the
table shows the validation and test Macro-F1 per data set (those found in
the files). A cell found in two files is taken from the one with more seeds
(and the other is named).
"""
import argparse
import json
import sys
from pathlib import Path

from gnnagg.utils import fmt, format_table

RESULTS = Path(__file__).with_name("results")
ORDER = ["LATTE-1", "LATTE-2", "LATTE-3", "HAN", "HGT", "RGCN", "HeteroConv-SAGE"]
DATASETS = ["ACM", "DBLP", "IMDB"]
NAMES = {"latte": "LATTE", "han": "HAN", "hgt": "HGT", "rgcn": "RGCN", "sage": "HeteroConv-SAGE"}


def cells(path: Path):
    """``(row label, setting, data set, summary, complete)`` per data set in
    a result file (also results written before the runner kept several data
    sets per file)."""
    result = json.loads(path.read_text())
    config = result.get("config", {})
    label = result.get("label") or (f"LATTE-{config.get('order')}" if config.get("model") == "latte"
                                    else NAMES.get(config.get("model"), config.get("model")))
    setting = "inductive" if config.get("inductive") else "transductive"
    summary = result.get("summary", {})
    if "test_macro_f1" in summary:  # one data set per file, epochs as 'epochs_run'
        summary = {config.get("dataset"): {**summary, "epochs": summary.get("epochs_run")}}
    complete = result.get("complete", not result.get("partial", False))
    for dataset, s in summary.items():
        yield label, setting, dataset, s, complete


def collect(paths):
    table, notes = {}, []
    for path in paths:
        for label, setting, dataset, s, complete in cells(path):
            key = (label, setting, dataset)
            n = s["test_macro_f1"]["n"]
            if key in table:
                kept = table[key]
                if (n, complete) <= (kept[0]["test_macro_f1"]["n"], kept[2]):
                    notes.append(f"{path.name}: {' '.join(key)} also in {kept[1].name}, kept that")
                    continue
                notes.append(f"{kept[1].name}: {' '.join(key)} also in {path.name}, kept that")
            table[key] = (s, path, complete)
    return table, notes


def cell(entry, metric: str) -> str:
    if entry is None:
        return "not run"
    s, _, complete = entry
    return f"{fmt(s[metric])} (n={s[metric]['n']})" + ("" if complete else " (partial)")


def final_table(paths) -> str:
    table, notes = collect(paths)
    rows = sorted({(label, setting) for label, setting, _ in table},
                  key=lambda r: (r[1] != "transductive",
                                 ORDER.index(r[0]) if r[0] in ORDER else len(ORDER)))
    datasets = [d for d in DATASETS if any(k[2] == d for k in table)] or DATASETS
    header = ["model", "setting"] + [f"{d} {m}" for d in datasets for m in ("Macro-F1", "Micro-F1")]
    body = [[label, setting] + [cell(table.get((label, setting, d)), f"test_{m}_f1")
                                for d in datasets for m in ("macro", "micro")]
            for label, setting in rows]
    timing = [[label, setting] + [
        "-" if (label, setting, d) not in table else "{:.0f} s, {:.0f} epochs".format(
            table[label, setting, d][0]["seconds"]["mean"],
            table[label, setting, d][0]["epochs"]["mean"]) for d in datasets]
        for label, setting in rows]
    out = [format_table(header, body), "",
           format_table(["model (s per run, epochs)", "setting"] + datasets, timing)]
    return "\n".join(out + ([""] + notes if notes else []))


def ablation_table(paths) -> str:
    """One row per file: validation Macro-F1 (what variants are chosen by)
    and, beside it, test Macro-F1 (reported, never used to choose)."""
    rows, files = [], [(path, {dataset: (s, complete) for _, _, dataset, s, complete
                               in cells(path)}) for path in paths]
    datasets = [d for d in DATASETS if any(d in found for _, found in files)]
    for path, found in files:
        row = [path.stem]
        for d in datasets:
            if d not in found:
                row += ["not run", "not run"]
                continue
            s, complete = found[d]
            tail = f" (n={s['val_macro_f1']['n']})" + ("" if complete else " (partial)")
            row += [fmt(s["val_macro_f1"]) + tail, fmt(s["test_macro_f1"])]
        rows.append(row)
    header = ["variant"] + [f"{d} {split} Macro-F1" for d in datasets
                            for split in ("validation", "test")]
    return format_table(header, rows)


def attention_plot(paths, out: str) -> str:
    """LATTE-2's relation attention from the transductive result files (one
    run per data set may come from different files, e.g. per-data-set
    settings chosen on validation)."""
    from gnnagg.experiments.plots import relation_attention

    attention = {}
    for label, setting, dataset, s, _ in (c for p in paths for c in cells(p)):
        if label == "LATTE-2" and setting == "transductive" and "attention" in s:
            attention[dataset] = s["attention"]
    if not attention:
        raise SystemExit("no transductive LATTE-2 result with attention in the given files")
    order = [d for d in DATASETS if d in attention]
    return relation_attention({d: attention[d] for d in order}, out,
                              title="LATTE-2: mean relation attention of the target nodes")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path,
                        help="result files (default: results/*.json)")
    parser.add_argument("--ablation", action="store_true",
                        help="one row per file: the validation Macro-F1 per data set")
    parser.add_argument("--attention", metavar="FILE.png",
                        help="also draw LATTE-2's (transductive) mean relation attention, one "
                             "panel per data set, from the given files")
    args = parser.parse_args(argv)
    paths = args.files or sorted(RESULTS.glob("*.json"))
    if not paths:
        print(f"no result files in {RESULTS}", file=sys.stderr)
        return 1
    if args.attention:
        print("wrote", attention_plot(paths, args.attention))
    print(ablation_table(paths) if args.ablation else final_table(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
