"""Tables for experiments/ogb/README.md from ``gnnagg run ogb`` result files.

    python experiments/ogb/summarize.py results/*.json [--epochs E] [--out results/summary.json]

Every file's finished seeds (``finished_runs``) are read, and so are the
seeds still in progress (their epoch checkpoints, next to the file or in its
``--checkpoint-dir``), so that runs stopped at a deadline count with every
epoch they finished. ``--epochs E`` selects each seed's model among its first
E epochs only, so that seeds that got through different numbers of epochs
are compared alike. Selection is on ``valid_<metric>`` (RMSE/MAE: lowest).
Result files of the runner before it moved onto ``gnnagg.train`` (with
``history`` instead of ``curve``) are not read.
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from gnnagg.experiments.common import fmt, format_table, mean_std, write_json
from gnnagg.experiments.ogb import DISPLAY


def seeds(path: Path):
    """(config, metric, seed key, curve, finished) of every seed in a result file."""
    if not path.exists():  # interrupted before its first seed finished
        print(f"  {path}: no result yet, skipped")
        return
    result = json.loads(path.read_text())
    cfg, metric = result["config"], result["metric"]
    finished = result.get("finished_runs", {})
    for key, record in finished.items():
        yield cfg, metric, key, record["curve"], True
    folder = (Path(cfg["checkpoint_dir"]) if cfg.get("checkpoint_dir")
              else path.with_name(f".{path.name}.checkpoints"))
    for ckpt in sorted(folder.glob("seed=*.pt")):
        if ckpt.stem not in finished:
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            yield cfg, metric, ckpt.stem, state["curve"], False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    groups = defaultdict(list)
    for path in args.results:
        for cfg, metric, key, curve, finished in seeds(path):
            rows = [r for r in curve[:args.epochs] if f"valid_{metric}" in r]
            if not rows:
                continue
            pick = min if metric in ("rmse", "mae") else max
            best = pick(rows, key=lambda r: r[f"valid_{metric}"])
            group = (cfg["dataset"], cfg["model"], cfg["aggr"], cfg["world_size"],
                     "bf16" if cfg["amp"] else "fp32", metric)
            groups[group].append({
                "file": path.name, "seed": key, "finished": finished, "epochs_done": len(curve),
                "best_epoch": best["epoch"], "valid": best[f"valid_{metric}"],
                "test": best[f"test_{metric}"],
                "train_s": float(np.mean([r["train_seconds"] for r in rows])),
                "eval_s": float(np.mean([r["eval_seconds"] for r in rows]))})
    table_rows, out = [], {}
    for (dataset, model, aggr, ws, prec, metric), runs in sorted(groups.items()):
        name, scale, digits = DISPLAY.get(metric, (metric, 1.0, 4))
        valid = mean_std([r["valid"] for r in runs])
        test = mean_std([r["test"] for r in runs])
        epochs = sorted({r["epochs_done"] for r in runs})
        table_rows.append([dataset, model, aggr, ws, prec, len(runs), "/".join(map(str, epochs)),
                           f"valid {name}: {fmt(valid, scale, digits)}",
                           f"test {name}: {fmt(test, scale, digits)}",
                           f"{np.mean([r['train_s'] for r in runs]):.0f}",
                           f"{np.mean([r['eval_s'] for r in runs]):.0f}"])
        out[f"{dataset}/{model}/{aggr}/ws{ws}/{prec}"] = {"metric": metric, "valid": valid,
                                                          "test": test, "runs": runs}
    table = format_table(["dataset", "model", "aggr", "processes", "precision", "seeds",
                          "epochs", "valid", "test", "train s/epoch", "eval s/epoch"], table_rows)
    print(table)
    for key, group in out.items():
        for r in group["runs"]:
            print(f"  {key} {r['seed']} ({r['file']}{'' if r['finished'] else ', in progress'}): "
                  f"epochs {r['epochs_done']}, best epoch {r['best_epoch']}, "
                  f"valid {r['valid']:.4f}, test {r['test']:.4f}")
    write_json(args.out, {"epochs_cap": args.epochs, "groups": out, "table": table})


if __name__ == "__main__":
    main()
