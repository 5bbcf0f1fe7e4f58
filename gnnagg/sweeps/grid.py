"""The grid of a sweep: cells (task x aggregator x seed) run one at a time,
each cached on disk as it finishes, and the summary of the finished cells."""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..train.checkpoint import Checkpoint, fingerprint
from ..utils import format_table, mean_std, progress, to_jsonable, write_json

__all__ = ["aggr_label", "CellStore", "SweepResult", "run_grid"]


def aggr_label(aggr: Any) -> str:
    """A short, file-safe name of an aggregator query: ``'lcm'``,
    ``'sum+max'`` for a list, the class name for a class."""
    if isinstance(aggr, (list, tuple)):
        return "+".join(aggr_label(a) for a in aggr)
    if isinstance(aggr, type):
        return aggr.__name__
    if isinstance(aggr, str):
        return aggr
    return type(aggr).__name__


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", text)


class CellStore:
    """Finished cells as one small JSON file each, below ``root/cells``, and
    the epoch checkpoints of the cell in progress below ``root/checkpoints``.
    A cell's file name holds the fingerprint of its task's settings, so a
    changed budget makes new cells and never mixes them with old ones."""

    def __init__(self, root: Optional[str]) -> None:
        self.root = Path(root).expanduser() if root else None
        if self.root is not None:
            if self.root.exists() and not self.root.is_dir():
                raise ValueError(f"--out-dir {self.root} is a file, not a folder")
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise ValueError(f"--out-dir {self.root} is not writable")

    def _path(self, task: str, aggr: str, seed: int, fp: str) -> Path:
        return self.root / "cells" / _safe(task) / _safe(aggr) / f"seed{seed}-{fp}.json"

    def get(self, task: str, aggr: str, seed: int, fp: str) -> Optional[Dict[str, Any]]:
        if self.root is None:
            return None
        path = self._path(task, aggr, seed, fp)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None  # only a crash inside the atomic write could leave this; redo

    def put(self, task: str, aggr: str, seed: int, fp: str, record: Dict[str, Any]) -> None:
        if self.root is not None:
            write_json(str(self._path(task, aggr, seed, fp)), record)

    def checkpoint(self, task: str, aggr: str, seed: int, fp: str,
                   settings: Dict[str, Any]) -> Optional[Checkpoint]:
        if self.root is None:
            return None
        interval = float(os.environ.get("GNNAGG_CHECKPOINT_SECONDS", "30"))
        path = self.root / "checkpoints" / f"{_safe(task)}--{_safe(aggr)}--seed{seed}-{fp}.pt"
        return Checkpoint(path, {"task": task, "aggr": aggr, "seed": seed, **settings},
                          min_interval=interval)


@dataclass
class SweepResult:
    """The finished cells of a sweep and what they say.

    Attributes:
        cells: one record per (task, aggregator, seed): ``task``, ``aggr``,
            ``seed``, ``metric``, ``test``, ``val``, ``best_epoch``,
            ``epochs``, ``seconds_per_epoch``, ``peak_memory_mb``,
            ``parameters`` and the training ``curve``.
        tasks: task names in order; aggrs: aggregator labels in order.
        higher: whether a larger metric is better, by task.
        metrics: the metric's name, by task.
    """
    cells: List[Dict[str, Any]]
    tasks: List[str]
    aggrs: List[str]
    higher: Dict[str, bool]
    metrics: Dict[str, str]
    wall_time_s: float = 0.0
    meta: Dict[str, Any] = field(default_factory=dict)

    def summary(self) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """``{task: {aggr: {test, val (mean_std), seconds_per_epoch,
        peak_memory_mb, parameters, rank}}}``; rank 1 is the best mean."""
        out: Dict[str, Dict[str, Dict[str, Any]]] = {}
        for task in self.tasks:
            rows = {}
            for aggr in self.aggrs:
                cs = [c for c in self.cells if c["task"] == task and c["aggr"] == aggr]
                if not cs:
                    continue
                rows[aggr] = {
                    "test": mean_std([c["test"] for c in cs]),
                    "val": mean_std([c["val"] for c in cs]),
                    "seconds_per_epoch": mean_std([c["seconds_per_epoch"] for c in cs])["mean"],
                    "peak_memory_mb": max(c["peak_memory_mb"] for c in cs),
                    "parameters": cs[0]["parameters"],
                }
            # Competition ranking: 1 + the number of strictly better means, so
            # equal means share a rank and a tie never reads as a win by order.
            means = {a: r["test"]["mean"] for a, r in rows.items()}
            sign = 1 if self.higher[task] else -1
            for aggr, mean in means.items():
                rows[aggr]["rank"] = 1 + sum(sign * (m - mean) > 0 for m in means.values())
            out[task] = rows
        return out

    def _scale(self, task: str) -> float:
        # Accuracies, F1 and ROC-AUC in percent; errors and correlations as they are.
        return 100.0 if self.metrics[task] in ("acc", "accuracy", "macro_f1", "micro_f1",
                                               "f1", "rocauc", "roc_auc") else 1.0

    def markdown(self) -> str:
        """Two tables: the metric (mean +- std over seeds, rank) per
        aggregator and task, and the cost (seconds per epoch, peak memory)."""
        s = self.summary()
        header = ["aggregator"] + [f"{t} ({self.metrics[t]}{' %' if self._scale(t) == 100 else ''})"
                                   for t in self.tasks] + ["mean rank"]
        rows = []
        for aggr in self.aggrs:
            row, ranks = [aggr], []
            for task in self.tasks:
                r = s[task].get(aggr)
                if r is None:
                    row.append("-")
                    continue
                scale = self._scale(task)
                digits = 1 if scale == 100 else 3
                m, sd = r["test"]["mean"] * scale, r["test"]["std"] * scale
                value = f"{m:.{digits}f} ± {sd:.{digits}f}"
                tie = sum(1 for x in s[task].values() if x["rank"] == r["rank"]) > 1
                rank = f"{r['rank']}=" if tie else f"{r['rank']}"
                row.append(f"**{value}** ({rank})" if r["rank"] == 1 else f"{value} ({rank})")
                ranks.append(r["rank"])
            row.append(f"{sum(ranks) / len(ranks):.1f}" if ranks else "-")
            rows.append(row)
        cost_header = ["aggregator"] + [f"{t} s/epoch, MB, params" for t in self.tasks]
        cost_rows = []
        for aggr in self.aggrs:
            row = [aggr]
            for task in self.tasks:
                r = s[task].get(aggr)
                row.append("-" if r is None else
                           f"{r['seconds_per_epoch']:.3f} s, {r['peak_memory_mb']:.0f} MB, "
                           f"{r['parameters'] / 1e3:.0f}k")
            cost_rows.append(row)
        seeds = sorted({c["seed"] for c in self.cells})
        return (f"Test metric at the epoch selected on validation, mean ± std over "
                f"{len(seeds)} seed(s); (rank) within each task, 1 = best.\n\n"
                + format_table(header, rows) + "\n\nCost per cell (mean seconds per training "
                "epoch, peak extra memory, parameters):\n\n" + format_table(cost_header, cost_rows))

    def heatmap(self, path: str, baseline: Optional[str] = "sum") -> Optional[str]:
        """A PNG: aggregators x tasks, coloured by rank within each task
        (1 = best, green), each cell annotated with its mean and, when
        ``baseline`` is in the grid, the difference to it."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        import numpy as np

        s = self.summary()
        ranks = np.full((len(self.aggrs), len(self.tasks)), np.nan)
        text = [["" for _ in self.tasks] for _ in self.aggrs]
        for j, task in enumerate(self.tasks):
            scale = self._scale(task)
            base = s[task].get(baseline) if baseline else None
            for i, aggr in enumerate(self.aggrs):
                r = s[task].get(aggr)
                if r is None:
                    continue
                ranks[i, j] = (r["rank"] - 1) / max(len(s[task]) - 1, 1)
                m = r["test"]["mean"] * scale
                text[i][j] = f"{m:.1f}" if scale == 100 else f"{m:.3f}"
                if base is not None and aggr != baseline:
                    d = (r["test"]["mean"] - base["test"]["mean"]) * scale
                    text[i][j] += f"\n{d:+.1f}" if scale == 100 else f"\n{d:+.3f}"
        fig_w = 1.6 + 1.15 * len(self.tasks)
        fig, ax = plt.subplots(figsize=(fig_w, 0.9 + 0.55 * len(self.aggrs)))
        ax.imshow(ranks, cmap="RdYlGn_r", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(self.tasks)),
                      [f"{t}\n({self.metrics[t]}, {'higher' if self.higher[t] else 'lower'} better)"
                       for t in self.tasks], fontsize=7, rotation=30, ha="right")
        ax.set_yticks(range(len(self.aggrs)), self.aggrs, fontsize=8)
        for i in range(len(self.aggrs)):
            for j in range(len(self.tasks)):
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=6.5)
        diff = f"; second line: difference to {baseline}" if baseline in self.aggrs else ""
        ax.set_title(f"Rank within each task (green = best){diff}", fontsize=9)
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def to_dict(self) -> Dict[str, Any]:
        return to_jsonable({"tasks": self.tasks, "aggregators": self.aggrs,
                            "metrics": self.metrics, "higher_is_better": self.higher,
                            "summary": self.summary(), "table": self.markdown(),
                            "wall_time_s": self.wall_time_s, **self.meta, "cells": self.cells})


def _peak_rss_mb() -> Optional[float]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> Optional[float]:
    """Reset the peak resident set size (Linux); return the current one."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _measure(run):
    """Run ``run()`` and return ``(result, peak extra memory in MB)``."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = run()
        return out, (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    base = _reset_peak_rss()
    out = run()
    peak = _peak_rss_mb()
    return out, (max(peak - base, 0.0) if base is not None and peak is not None else float("nan"))


def run_grid(tasks: Sequence[Any], aggrs: Sequence[Any], seeds: Sequence[int],
             out_dir: Optional[str] = None, desc: str = "sweep") -> SweepResult:
    """Run every (task, aggregator, seed) cell not yet finished in
    ``out_dir``; return all finished cells of this grid.

    Each ``task`` has ``name``, ``metric``, ``higher_is_better``,
    ``settings()`` (what its cells depend on, besides aggregator and seed)
    and ``run(aggr, seed, checkpoint=None) -> dict`` (see
    :class:`gnnagg.sweeps.tasks.Task`). Interrupting (Ctrl-C) loses at most
    the cell in progress, which resumes from its last epoch checkpoint.
    """
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique (got {names})")
    labels = [aggr_label(a) for a in aggrs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"aggregators must be distinct (got {labels})")
    store = CellStore(out_dir)
    tic = time.perf_counter()
    cells: List[Dict[str, Any]] = []
    jobs: List[Tuple[Any, Any, str, int]] = [(t, a, l, s) for t in tasks
                                             for a, l in zip(aggrs, labels) for s in seeds]
    bar = progress(jobs, desc=desc, unit="cell")
    for task, aggr, label, seed in bar:
        settings = task.settings()
        fp = fingerprint(settings)
        record = store.get(task.name, label, seed, fp)
        if record is None:
            bar.set_postfix_str(f"{task.name} {label} seed {seed}")
            ckpt = store.checkpoint(task.name, label, seed, fp, settings)
            out, peak = _measure(lambda: task.run(aggr, seed, checkpoint=ckpt))
            record = {"task": task.name, "aggr": label, "seed": seed, "metric": task.metric,
                      "settings": settings, "peak_memory_mb": peak, **out}
            store.put(task.name, label, seed, fp, record)
            if ckpt is not None:
                ckpt.remove()
        cells.append(record)
    return SweepResult(cells, names, labels, {t.name: t.higher_is_better for t in tasks},
                       {t.name: t.metric for t in tasks}, time.perf_counter() - tic)
