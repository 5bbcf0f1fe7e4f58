"""What ``gnnagg run generalization`` compares and how it reports it: the
tasks' smallest set sizes, the aggregators under test (name -> spec), and
the summary over seeds, the tables and the one-line reading per task (the
plot is :func:`gnnagg.experiments.plots.generalization`; ``--from-json``
is :mod:`gnnagg.experiments.generalization_merge`).

A run is keyed ``task/aggregator/seed``; its record holds ``val`` (the
validation accuracy at ``best_epoch``), ``test`` (``{size: accuracy}``, the
model of ``best_epoch``), ``depth``, ``params`` and the ``curve`` of
:func:`gnnagg.train.fit`. Imports no torch at module level, so that the
runner's ``--help`` stays instant.
"""
from __future__ import annotations

import importlib
import math
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from ..utils import environment, fmt, format_table, mean_std

# The comparison ############################################################

#: Task -> smallest set size: ``gnnagg.datasets.synthetic.TASKS``, named here
#: so that ``--help`` and option errors import no torch.
TASKS: Dict[str, int] = {"second_min": 2, "max": 1, "parity": 1, "majority": 1}


class AggregatorSpec(NamedTuple):
    """One aggregator of the comparison: ``query`` for :func:`gnnagg.aggr.resolve`
    (a name, or ``module:Class`` for PyG classes whose names gnnagg's shadow),
    the ``label`` of tables and plots, ``kwargs(channels, config)`` for its
    constructor, and ``depth(max set size)`` (sequential steps) for modules
    without a ``depth`` method of their own."""
    query: str
    label: str
    kwargs: Callable[[int, Any], Dict[str, Any]] = lambda c, cfg: {}
    depth: Optional[Callable[[int], int]] = None

    def aggr(self):
        """The name, or the class, to give :func:`gnnagg.aggr.resolve`."""
        module, _, name = self.query.rpartition(":")
        return getattr(importlib.import_module(module), name) if module else name


def _deep_sets(c: int, cfg: Any) -> Dict[str, Any]:
    from torch.nn import Linear, ReLU, Sequential

    mlp = lambda: Sequential(Linear(c, c), ReLU(), Linear(c, c))
    return {"local_nn": mlp(), "global_nn": mlp()}


# The encoder already ends in a linear map, so LCM's leaves are its output
# squashed by tanh into (-1, 1), the range of the GRU operator's outputs:
# every tree level then lives in the same box (the lcm_relu ablation shows
# the difference; experiments/generalization/README.md).
_LCM = {"project": False, "activation": "tanh"}
_one = lambda d: 1
_log = lambda d: math.ceil(math.log2(d)) if d > 1 else 0

#: The comparison, by the name used on the command line.
AGGREGATORS: Dict[str, AggregatorSpec] = {
    "sum": AggregatorSpec("sum", "sum", depth=_one),
    "mean": AggregatorSpec("mean", "mean", depth=_one),
    "max": AggregatorSpec("max", "max", depth=_one),
    "deepsets": AggregatorSpec("deep_sets", "DeepSets (PyG)", _deep_sets, _one),
    "pyg_gru": AggregatorSpec("torch_geometric.nn.aggr:GRUAggregation", "GRU (PyG)",
                              depth=lambda d: d),
    "pyg_lcm": AggregatorSpec("torch_geometric.nn.aggr:LCMAggregation", "LCM (PyG)", depth=_log),
    "gru": AggregatorSpec("gru", "GRU"),
    "lstm": AggregatorSpec("lstm", "LSTM"),
    "lcm": AggregatorSpec("lcm", "LCM", lambda c, cfg: dict(_LCM)),
    "lcm_assoc": AggregatorSpec("lcm", "LCM + assoc. reg.",
                                lambda c, cfg: dict(_LCM, assoc_samples=cfg.assoc_samples)),
    # ablation, not run by default: LCM's default leaves, ReLU(W h + b) as in PyG
    "lcm_relu": AggregatorSpec("lcm", "LCM, ReLU-projected leaves"),
}

#: What runs when ``--aggregators`` is not given.
DEFAULT_AGGREGATORS = tuple(a for a in AGGREGATORS if a != "lcm_relu")

#: The fixed reductions a learned aggregator is compared against.
FIXED = ("sum", "mean", "max")


# Results ####################################################################

def run_key(task: str, aggregator: str, seed: int) -> str:
    return f"{task}/{aggregator}/{seed}"


def parse_key(key: str) -> Tuple[str, str, int]:
    task, aggregator, seed = key.split("/")
    return task, aggregator, int(seed)


def baseline(test: Mapping[int, list]) -> Dict[str, float]:
    """Accuracy of always answering each test size's most frequent label
    (large sets make some answers likely: max 255, second-minimum 0)."""
    import torch

    from ..metrics import majority_baseline

    out = {}
    for size, chunks in test.items():
        y = torch.cat([c.y for c in chunks]).numpy()
        out[str(size)] = majority_baseline(y, y, ["acc"])["acc"]
    return out


def baselines(cfg, make_data: Callable) -> Dict[str, Dict[str, float]]:
    """``{task: {size: accuracy of the most frequent label}}`` on the test
    sets that ``make_data(task, cfg, train=False)`` makes."""
    return {t: baseline(make_data(t, cfg, train=False)["test"]) for t in cfg.tasks}


def print_run(prefix: str, record: Mapping[str, Any], note: str) -> None:
    """One line as each run finishes (or is found finished)."""
    last = list(record["test"])[-1]
    val = f"{100 * record['val']:.1f}%" if record["val"] is not None else "-"
    print(f"{prefix} {record['task']} seed {record['seed']}: val {val}, test at size {last} "
          f"{100 * record['test'][last]:.1f}% ({note})", flush=True)


def _epoch_times(record: Mapping[str, Any]) -> List[float]:
    if "epoch_time" in record:  # files written before the runner moved onto fit
        return list(record["epoch_time"])
    return [row["train_seconds"] for row in record.get("curve", []) if "train_seconds" in row]


def summarize(runs: Mapping[str, Mapping[str, Any]], test_sizes) -> Dict[str, Dict[str, Any]]:
    """``{task: {aggregator: mean +- std over seeds}}``, in the runs' order."""
    grouped: Dict[str, Dict[str, List[Tuple[int, Mapping[str, Any]]]]] = {}
    for key, record in runs.items():
        task, name, seed = parse_key(key)
        grouped.setdefault(task, {}).setdefault(name, []).append((seed, record))
    summary: Dict[str, Dict[str, Any]] = {}
    for task, by_aggr in grouped.items():
        summary[task] = {}
        for name, seeds in by_aggr.items():
            recs = [r for _, r in seeds]
            spec = AGGREGATORS.get(name)
            summary[task][name] = {
                "label": spec.label if spec else name, "seeds": [s for s, _ in seeds],
                "test": {str(d): mean_std([r["test"][str(d)] for r in recs]) for d in test_sizes},
                "val": mean_std([r["val"] if r["val"] is not None else math.nan for r in recs]),
                "best_epoch": [r["best_epoch"] for r in recs],
                "epoch_time_s": mean_std([t for r in recs for t in _epoch_times(r)]),
                "depth": recs[0]["depth"], "params": recs[0]["params"]}
    return summary


def tables(summary: Mapping[str, Any], baselines: Mapping[str, Mapping[str, float]],
           test_sizes, train_max: int) -> Dict[str, str]:
    """One Markdown table per task: accuracy (%) by test size, seconds per
    training epoch, aggregation depth at the largest training / test size."""
    out = {}
    sizes = [str(d) for d in test_sizes]
    for task, by_aggr in summary.items():
        header = ["aggregator"] + [f"d={d}" for d in sizes] + \
            ["s/epoch", f"depth d={train_max}/{sizes[-1]}"]
        rows = [["(most frequent label)"] + [f"{100 * baselines[task][d]:.1f}" for d in sizes]
                + ["-", "-"]]
        for s in by_aggr.values():
            rows.append([s["label"]] + [fmt(s["test"][d], digits=1) for d in sizes] +
                        [f"{s['epoch_time_s']['mean']:.2f}",
                         f"{s['depth'][str(train_max)]}/{s['depth'][sizes[-1]]}"])
        out[task] = format_table(header, rows)
    return out


def headlines(summary: Mapping[str, Any], baselines: Mapping[str, Mapping[str, float]],
              test_sizes, train_sizes) -> List[str]:
    """One sentence per task, readable in five seconds: every learned
    aggregator at the largest test size, the best fixed reduction, the
    most-frequent-label level and LCM's margin over the best fixed reduction."""
    size = str(test_sizes[-1])
    lines = []
    for task, by_aggr in summary.items():
        acc = {name: 100 * s["test"][size]["mean"] for name, s in by_aggr.items()}
        learned = [f"{by_aggr[n]['label']} {acc[n]:.1f}%" for n in  # LCM first
                   sorted(by_aggr, key=lambda n: n != "lcm") if n not in FIXED]
        fixed = [n for n in FIXED if n in by_aggr]
        best = max(fixed, key=lambda n: acc[n]) if fixed else None
        which = "/".join(fixed) if len(fixed) > 1 else best
        if fixed:
            learned.append(f"best of {which} {acc[best]:.1f}% ({best})" if len(fixed) > 1
                           else f"{best} {acc[best]:.1f}%")
        line = (f"{task} at size {size} (trained on sizes {train_sizes[0]}-{train_sizes[1]}): "
                f"{', '.join(learned)}; most frequent label {100 * baselines[task][size]:.1f}%.")
        if fixed and "lcm" in by_aggr:
            line += f" LCM vs {'the best of ' if len(fixed) > 1 else ''}{which}: " \
                    f"{acc['lcm'] - acc[best]:+.1f} points."
        lines.append(line)
    return lines


def build(runs: Mapping[str, Any], cfg,
          baselines: Mapping[str, Mapping[str, float]]) -> Dict[str, Any]:
    """The report part of a result: summary, baselines, tables, headlines."""
    summary = summarize(runs, cfg.test_sizes)
    return {"environment": environment(), "summary": summary, "baseline": dict(baselines),
            "tables": tables(summary, baselines, cfg.test_sizes, cfg.train_sizes[1]),
            "headline": headlines(summary, baselines, cfg.test_sizes, cfg.train_sizes)}


def print_result(result: Mapping[str, Any], cfg, out: Optional[str]) -> None:
    """The tables, then the plain summary and where the files went."""
    lo, hi = cfg.train_sizes
    for task, table in result["tables"].items():
        seeds = max(s["val"]["n"] for s in result["summary"][task].values())
        print(f"\n## {task}: test accuracy (%) by set size, mean +- std over {seeds} seed(s); "
              f"trained on sizes {lo}-{hi}\n\n{table}")
    if "wall_time_s" in result:
        print(f"\nwall time {result['wall_time_s']:.0f} s")
    print()
    for line in result["headline"]:
        print(line)
    where = f"Results: {out}" if out else "Results: not saved (no --out)"
    plot_path = result.get("plot")
    print(f"{where}; plot: {plot_path}" if plot_path else f"{where}; no plot")
