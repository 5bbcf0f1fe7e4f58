"""Print the closing table of experiments/hetero from results/*.json.

    python experiments/hetero/table.py
"""
import json
import sys
from pathlib import Path

from gnnagg.experiments.common import fmt, format_table

RESULTS = Path(__file__).with_name("results")
ROWS = [("LATTE-1", "latte-1"), ("LATTE-2", "latte-2"), ("HAN", "han-2"), ("HGT", "hgt-2"),
        ("RGCN", "rgcn-2")]
DATASETS = ["ACM", "DBLP", "IMDB"]


def cell(path: Path, metric: str) -> str:
    if not path.is_file():
        return "not run"
    result = json.loads(path.read_text())
    ms = result["summary"][metric]
    note = " (partial)" if result.get("partial") else ""
    return f"{fmt(ms)} (n={ms['n']}){note}"


def main() -> None:
    header = ["model"] + [f"{d} {m}" for d in DATASETS for m in ("Macro-F1", "Micro-F1")]
    rows = [[label] + [cell(RESULTS / f"{stem}-{d}.json", f"test_{m}_f1")
                       for d in DATASETS for m in ("macro", "micro")]
            for label, stem in ROWS]
    print(format_table(header, rows))
    timing = [[label] + [("-" if not (RESULTS / f"{stem}-{d}.json").is_file() else
                          "{:.0f} s, {:.0f} epochs".format(
                              json.loads((RESULTS / f"{stem}-{d}.json").read_text())["summary"]["seconds"]["mean"],
                              json.loads((RESULTS / f"{stem}-{d}.json").read_text())["summary"]["epochs_run"]["mean"]))
                         for d in DATASETS] for label, stem in ROWS]
    print()
    print(format_table(["model (s per run, epochs)"] + DATASETS, timing))
    tried = sorted(RESULTS.glob("tried-*.json"))
    if tried:
        rows = []
        for path in tried:
            result = json.loads(path.read_text())
            s = result["summary"]
            rows.append([path.stem[len("tried-"):], cell(path, "test_macro_f1"),
                         cell(path, "test_micro_f1"),
                         f"{s['epochs_run']['mean']:.0f}", f"{s['seconds']['mean']:.0f}"])
        print()
        print(format_table(["variant", "Macro-F1", "Micro-F1", "epochs", "s/run"], rows))


if __name__ == "__main__":
    sys.exit(main())
