"""Which aggregator wins, on which benchmark: aggregators x benchmarks x seeds.

Every aggregator of --aggrs (any name gnnagg.aggr.resolve knows; 'a+b' for
a multi-aggregation) is trained on every benchmark of --benchmarks with the
same seeds and budget. Each benchmark is a data set, a model that takes the
aggregator, and a budget:

  synthetic sets    second_min, parity, max, majority (train on sets of
                    2-16 elements, report accuracy on sets of 512)
  node classif.     Cora/sage, Cora/gin, Cora/gcn, CiteSeer/... or any name
                    gnnagg.datasets.load_citation knows (CS, Computers, ...)
  graph property    ogbg-molesol/gin, ogbg-molfreesolv/gin, ogbg-molhiv/gin,
                    or any ogbg-* name (OGB's GIN, OGB's evaluator)
  heterogeneous     ACM/latte (also DBLP, IMDB): LATTE with first-order
                    relations (LATTE-1); a learned aggregator on LATTE-2's
                    composed relations costs ~40 s and 7 GB per epoch on ACM
  your own          FILE.py:NAME, a list of gnnagg.sweeps.Task objects (or a
                    function returning one)

Output in --out-dir: sweep.json (every cell, with its training curve),
sweep.md (mean +- std per cell, rank per benchmark, seconds per epoch, peak
memory) and sweep.png (a heat map of ranks). Every finished cell is kept
in --out-dir/cells: a rerun skips finished cells and resumes an
interrupted one, so Ctrl-C loses at most the epochs since the last
checkpoint of the cell in progress.

Learned aggregators (lcm, gru, lstm) cost O(width^2) per neighbour; where a
model aggregates raw features (sage and gin on Cora's 1,433), they work on a
projection to the hidden width (--aggr-width; see gnnagg.aggr.Projected).

Examples:
  gnnagg run sweep --quick --out-dir out/sweep
  gnnagg run sweep --full --out-dir out/sweep-full
  gnnagg run sweep --aggrs sum mean lcm sum+max --benchmarks Cora/sage parity --seeds 3
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any, Dict, List

from ..utils import write_json

WRITES_OUT = True

#: The grid's default aggregators.
DEFAULT_AGGRS = ("sum", "mean", "max", "softmax", "std", "sum+max", "lcm", "gru", "lstm")
#: The grid's default benchmarks.
DEFAULT_BENCHMARKS = ("second_min", "parity", "max", "majority",
                      "Cora/sage", "Cora/gin", "Cora/gcn", "CiteSeer/sage", "CiteSeer/gin",
                      "CiteSeer/gcn", "ogbg-molesol/gin", "ogbg-molfreesolv/gin",
                      "ogbg-molhiv/gin", "ACM/latte")
SET_TASKS = ("second_min", "parity", "max", "majority")
GTN = ("ACM", "DBLP", "IMDB")

#: Budgets by kind of benchmark, for each preset (fixed before any result).
BUDGETS: Dict[str, Dict[str, Dict[str, Any]]] = {
    "quick": {
        "set": dict(train_sets=1024, epochs=3, test_size=128, test_sets=128, val_sets=128),
        # The input projection was added after a first quick run took 12 min
        # for 79 of 126 cells, 500 s of them on CiteSeer's 3,703 raw features
        # (GIN and SAGE aggregate them; sum+max alone took 170 s there).
        "node": dict(epochs=30, patience=0, hidden=32, input_projection=32),
        "graph": dict(epochs=2, subset=256, eval_subset=1024, hidden=32, layers=2),
        "hetero": dict(epochs=8, patience=0, hidden=32, layers=1),
    },
    "full": {
        "set": dict(train_sets=16384, epochs=10, test_size=512, test_sets=256),
        "node": dict(epochs=200, patience=50, hidden=64),
        "graph": dict(epochs=30, hidden=64, layers=3),
        # LATTE-1 (first-order relations): with a learned aggregator, LATTE-2's
        # composed paper-subject-paper relation costs ~40 s and 7 GB per epoch.
        "hetero": dict(epochs=100, patience=30, hidden=64, layers=1),
    },
}
#: Per benchmark changes to its kind's budget (molhiv's 32,901 training
#: graphs at 30 epochs would take a day for the learned aggregators here).
OVERRIDES: Dict[str, Dict[str, Dict[str, Any]]] = {
    "full": {"ogbg-molhiv/gin": dict(subset=4096, epochs=20)},
}
PRESET_SEEDS = {"quick": 1, "full": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="tiny budgets: the whole grid in minutes (default)")
    preset.add_argument("--full", action="store_true", help="the full budgets (hours)")
    parser.add_argument("--aggrs", nargs="+", metavar="AGGR", default=list(DEFAULT_AGGRS),
                        help=f"aggregators; 'a+b' is a multi-aggregation (default: "
                             f"{' '.join(DEFAULT_AGGRS)})")
    parser.add_argument("--benchmarks", nargs="+", metavar="NAME",
                        default=list(DEFAULT_BENCHMARKS),
                        help="benchmarks (see above; default: all fourteen listed)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds 0..N-1 (default: 1 with --quick, 3 with --full)")
    parser.add_argument("--aggr-width", type=int, default=64,
                        help="width learned aggregators work at in layers that aggregate wider "
                             "raw features (default: 64)")
    parser.add_argument("--out-dir", default="out/sweep",
                        help="folder for the cells, sweep.json, sweep.md, sweep.png "
                             "(default: out/sweep)")
    parser.add_argument("--out", default=None, help="also write sweep.json here (default: no)")


def parse_aggr(text: str):
    """``'lcm'`` -> ``'lcm'``; ``'sum+max'`` -> ``['sum', 'max']``."""
    parts = [p for p in text.split("+") if p]
    if not parts:
        raise ValueError(f"empty aggregator '{text}'")
    return parts if len(parts) > 1 else parts[0]


def _user_tasks(spec: str) -> List[Any]:
    path, _, attr = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"benchmark file {file} does not exist (from '{spec}')")
    module_spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, attr):
        raise ValueError(f"{file} defines no '{attr}'")
    tasks = getattr(module, attr)
    tasks = tasks() if callable(tasks) else tasks
    return list(tasks) if isinstance(tasks, (list, tuple)) else [tasks]


def build_tasks(names: List[str], preset: str, aggr_width: int) -> List[Any]:
    """The benchmark tasks for ``names`` under a preset's budgets."""
    from ..sweeps import GraphTask, HeteroTask, NodeTask, SetTask

    tasks = []
    for name in names:
        if name.endswith(".py") or ".py:" in name:
            tasks.extend(_user_tasks(name if ":" in name else f"{name}:TASKS"))
            continue
        dataset, _, model = name.partition("/")
        budget = dict(OVERRIDES.get(preset, {}).get(name, {}))
        if dataset in SET_TASKS:
            tasks.append(SetTask(task=dataset, **{**BUDGETS[preset]["set"], **budget}))
        elif dataset.startswith("ogbg-"):
            tasks.append(GraphTask(dataset=dataset, model=model or "gin",
                                   **{**BUDGETS[preset]["graph"], **budget}))
        elif dataset.upper() in GTN:
            if model not in ("", "latte"):
                raise ValueError(f"heterogeneous benchmarks use LATTE (got '{name}')")
            tasks.append(HeteroTask(dataset=dataset.upper(),
                                    **{**BUDGETS[preset]["hetero"], **budget}))
        else:
            from ..datasets.citation import dataset_key

            dataset_key(dataset)  # unknown names fail here, listing the known ones
            tasks.append(NodeTask(dataset=dataset, model=model or "sage", aggr_width=aggr_width,
                                  **{**BUDGETS[preset]["node"], **budget}))
    return tasks


def main(args: argparse.Namespace) -> Dict[str, Any]:
    preset = "full" if args.full else "quick"
    seeds = args.seeds if args.seeds is not None else PRESET_SEEDS[preset]
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1 (got {seeds})")
    if args.aggr_width < 1:
        raise ValueError(f"--aggr-width must be >= 1 (got {args.aggr_width})")
    aggrs = [parse_aggr(a) for a in args.aggrs]
    from ..aggr import aggregator_class

    for a in aggrs:
        for member in (a if isinstance(a, list) else [a]):
            aggregator_class(member)  # unknown names fail before any training
    tasks = build_tasks(args.benchmarks, preset, args.aggr_width)
    from ..sweeps import run_grid
    from ..utils import environment

    result = run_grid(tasks, aggrs, list(range(seeds)), args.out_dir, desc=f"sweep ({preset})")
    result.meta.update(preset=preset, environment=environment(),
                       command_aggrs=args.aggrs, command_benchmarks=args.benchmarks)
    out = Path(args.out_dir)
    data = result.to_dict()
    write_json(str(out / "sweep.json"), data)
    table = result.markdown()
    (out / "sweep.md").write_text(f"# gnnagg sweep ({preset})\n\n{table}\n")
    plot = result.heatmap(str(out / "sweep.png"))
    if args.out:
        write_json(args.out, data)
    print("\n" + table)
    print(f"\n{len(result.cells)} cells in {out}/cells; table {out / 'sweep.md'}, "
          f"heat map {plot}, all results {out / 'sweep.json'}")
    return data
