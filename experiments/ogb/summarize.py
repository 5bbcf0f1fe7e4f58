"""Tables for experiments/ogb/README.md from the per-epoch checkpoints that
``run_all.sh`` leaves in ``$WORK/ckpt/<name>/run-0.pt`` (finished or not).

    python experiments/ogb/summarize.py /tmp/ogb7/ckpt [--epochs E] [--out results/summary.json]

``--epochs E`` selects each run's model among its first E epochs only, so
that seeds that got through different numbers of epochs are compared alike.
"""
import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from gnnagg.experiments.common import fmt, format_table, mean_std, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt_root", type=Path)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    groups = defaultdict(list)
    for path in sorted(args.ckpt_root.glob("*/run-*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=False)
        cfg, history = state["config"], state["history"]
        if args.epochs is not None:
            history = history[:args.epochs]
        if not history:
            continue
        best = max(history, key=lambda h: h["valid"])
        key = (cfg["model"], cfg["aggr"], cfg["world_size"], "bf16" if cfg["amp"] else "fp32")
        groups[key].append({"name": path.parent.name, "seed": cfg["seed"],
                            "epochs_done": len(history), "best_epoch": best["epoch"],
                            "valid": best["valid"], "test": best["test"],
                            "train_s": float(np.mean([h["train_seconds"] for h in history])),
                            "eval_s": float(np.mean([h["eval_seconds"] for h in history]))})
    rows, out = [], {}
    for (model, aggr, ws, prec), runs in sorted(groups.items()):
        valid = mean_std([r["valid"] for r in runs])
        test = mean_std([r["test"] for r in runs])
        epochs = sorted({r["epochs_done"] for r in runs})
        rows.append([model, aggr, ws, prec, len(runs), "/".join(map(str, epochs)),
                     fmt(valid, digits=2), fmt(test, digits=2),
                     f"{np.mean([r['train_s'] for r in runs]):.0f}",
                     f"{np.mean([r['eval_s'] for r in runs]):.0f}"])
        out[f"{model}/{aggr}/ws{ws}/{prec}"] = {"valid": valid, "test": test, "runs": runs}
    table = format_table(["model", "aggr", "processes", "precision", "seeds", "epochs",
                          "valid ROC-AUC", "test ROC-AUC", "train s/epoch", "eval s/epoch"], rows)
    print(table)
    for key, group in out.items():
        for r in group["runs"]:
            print(f"  {key} seed {r['seed']}: epochs {r['epochs_done']}, best epoch "
                  f"{r['best_epoch']}, valid {r['valid']:.4f}, test {r['test']:.4f}")
    write_json(args.out, {"epochs_cap": args.epochs, "groups": out, "table": table})


if __name__ == "__main__":
    main()
