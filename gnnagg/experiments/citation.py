"""Citation and co-purchase node classification: DAGNN and GCN/SAGE/GIN/APPNP/SGC baselines.

Reproduces Tables 2-4 of "Towards Deeper Graph Neural Networks" (Liu, Gao &
Ji, KDD 2020, https://arxiv.org/abs/2007.09296) with the authors' protocol:
row-normalised features, Adam, after half of ``--epochs`` stop once the
validation loss exceeds the mean of the previous ``--patience`` epochs, and
report the test accuracy at the lowest validation loss. Settings per model
and data set come from ``MODELS`` and ``DATASET_DEFAULTS`` (options given
win); ``--aggr`` takes any aggregator of ``gnnagg.aggr.resolve``. Splits:
``public``, ``random`` (20/30 per class for training/validation, a new draw
per run) or ``random_authors`` (the authors' Amazon code, see docs/dagnn.md).
With ``--out`` finished runs are kept, and rerunning the same command
resumes an interrupted experiment. ``--depths`` runs the over-smoothing
analysis (``gnnagg/experiments/oversmoothing.py``).

Examples:
    gnnagg run citation --model dagnn --dataset Cora --runs 100 --out cora.json
    gnnagg run citation --model dagnn --dataset CS --split random --runs 10
    gnnagg run citation --model sage --dataset Cora --aggr lcm --aggr-width 64
    gnnagg run citation --dataset Cora --analysis-models gcn dagnn \\
        --depths 1 2 4 8 16 32 --runs 3 --plot oversmoothing.png
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from .common import (add_config_arguments, check_choice, check_fraction, check_positive,
                     config_from_args, environment, fmt, format_table, option)

#: The runner writes ``--out`` itself (through its RunStore).
WRITES_OUT = True



@dataclass(frozen=True)
class CitationConfig:
    """One experiment; the model's and data set's defaults fill in what the
    command line does not give (see ``defaults_for``)."""
    model: str = option("dagnn", "dagnn, gcn, sage, gin, appnp or sgc")
    dataset: str = option("Cora", "Cora, CiteSeer, PubMed, CS, Physics, Computers, Photo, arxiv")
    runs: int = option(100, "independent runs; run r uses seed + r (weights, dropout, split)")
    seed: int = option(0, "seed of the first run")
    split: str = option("public", "public, random or random_authors")
    lcc: bool = option(False, "draw random splits from the largest connected component only")
    train_per_class: int = option(20, "random splits: training nodes per class")
    val_per_class: int = option(30, "random splits: validation nodes per class")
    aggr: str = option("sum", "neighbourhood aggregation, any name gnnagg.aggr.resolve knows")
    aggr_width: Optional[int] = option(None, "run learned aggregators at this width (Projected)")
    epochs: int = option(1000, "most epochs per run")
    patience: int = option(100, "early-stopping window (0: never stop early)")
    stopping: str = option("dagnn", "dagnn: after half the epochs, stop when val_loss exceeds "
                                  "the mean of the last PATIENCE; patience: stop after "
                                  "PATIENCE epochs without a better SELECT")
    select: str = option("val_loss", "report the test accuracy at the best val_loss or val_acc")
    lr: float = option(0.01, "Adam learning rate")
    weight_decay: float = option(0.005, "Adam weight decay")
    hidden: int = option(64, "hidden channels")
    num_layers: int = option(2, "convolutions (gcn, sage, gin) or MLP layers (dagnn, appnp)")
    dropout: float = option(0.8, "dropout")
    input_dropout: Optional[float] = option(None, "DAGNN: input dropout (none: --dropout)")
    batch_norm: bool = option(False, "batch norm after hidden layers (dagnn, gcn, sage, gin)")
    K: int = option(10, "propagation hops (dagnn, appnp, sgc)")
    alpha: float = option(0.1, "APPNP teleport probability")
    normalize_features: bool = option(True, "row-normalise the features")
    sparse_features: bool = option(True, "keep bag-of-words features sparse (dagnn)")
    sparse_prop: bool = option(True, "DAGNN: cached sparse-matrix hops (else propagate() per hop)")
    time_propagate_runs: int = option(0, "DAGNN: also time this many runs with propagate()")
    depths: Tuple[int, ...] = option((), "over-smoothing analysis: depths (K or layers) to sweep")
    analysis_models: Tuple[str, ...] = option(("gcn", "dagnn"), "over-smoothing analysis: models")
    plot: Optional[str] = option(None, "PNG of the over-smoothing analysis")
    checkpoint_dir: Optional[str] = option(None, "epoch checkpoints (none: next to --out)")


#: Options that may change between an interrupted experiment and its resumption.
RESUMABLE = ("runs", "plot", "checkpoint_dir", "time_propagate_runs")


# Models ######################################################################

def _models():
    from .. import models

    return models


def _stack(name: str, **extra: Any) -> Callable[[CitationConfig, int, int], Any]:
    return lambda c, n_in, n_out: getattr(_models(), name)(
        n_in, c.hidden, n_out, num_layers=c.num_layers, dropout=c.dropout, aggr=c.aggr,
        aggr_width=c.aggr_width, batch_norm=c.batch_norm, **extra)


@dataclass(frozen=True)
class ModelSpec:
    """How the runner builds one model and what it defaults to.

    Attributes:
        build: ``(config, in_channels, num_classes) -> module`` with a
            ``logits(x, edge_index)`` method (class scores).
        defaults: config values on every data set.
        dataset_defaults: config values by data set key (over ``defaults``).
        depth_field: the config field the over-smoothing analysis sweeps.
        sparse_input: whether the model takes sparse feature matrices.
    """
    build: Callable[[CitationConfig, int, int], Any]
    defaults: Dict[str, Any]
    dataset_defaults: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    depth_field: str = "num_layers"
    sparse_input: bool = False


_BASELINE = dict(epochs=200, patience=10, lr=0.01, hidden=16, num_layers=2, dropout=0.5,
                 weight_decay=5e-4)

# The authors' per-dataset settings (K / dropout / weight decay) for DAGNN;
# the baselines use the settings of their papers (PyG's citation benchmark).
MODELS: Dict[str, ModelSpec] = {
    "dagnn": ModelSpec(
        build=lambda c, n_in, n_out: _models().DAGNN(
            n_in, c.hidden, n_out, K=c.K, dropout=c.dropout, input_dropout=c.input_dropout,
            num_layers=c.num_layers, batch_norm=c.batch_norm, aggr=c.aggr, sparse=c.sparse_prop),
        defaults=dict(epochs=1000, patience=100, lr=0.01, hidden=64, num_layers=2),
        dataset_defaults={
            "cora": dict(K=10, dropout=0.8, weight_decay=0.005),
            "citeseer": dict(K=10, dropout=0.5, weight_decay=0.02),
            "pubmed": dict(K=20, dropout=0.8, weight_decay=0.005),
            "cs": dict(K=5, dropout=0.8, weight_decay=0.0),
            "physics": dict(K=5, dropout=0.8, weight_decay=0.0),
            "computers": dict(K=5, dropout=0.5, weight_decay=5e-5, epochs=3000, patience=300),
            "photo": dict(K=5, dropout=0.5, weight_decay=5e-4),
            "ogbn-arxiv": dict(K=16, hidden=256, num_layers=2, batch_norm=True, dropout=0.2,
                               input_dropout=0.0, lr=0.005, weight_decay=0.0, epochs=1000,
                               patience=0, select="val_acc"),
        },
        depth_field="K", sparse_input=True),
    "gcn": ModelSpec(build=_stack("GCN", cached=True), defaults=_BASELINE),
    "sage": ModelSpec(build=_stack("GraphSAGE"), defaults=dict(_BASELINE, hidden=64, aggr="mean")),
    "gin": ModelSpec(build=_stack("GIN"), defaults=dict(_BASELINE, hidden=64)),
    "appnp": ModelSpec(
        build=lambda c, n_in, n_out: _models().APPNPNet(
            n_in, c.hidden, n_out, num_layers=c.num_layers, K=c.K, alpha=c.alpha,
            dropout=c.dropout, aggr=c.aggr, aggr_width=c.aggr_width, cached=True),
        defaults=dict(_BASELINE, hidden=64, K=10, alpha=0.1), depth_field="K"),
    "sgc": ModelSpec(
        build=lambda c, n_in, n_out: _models().SGC(n_in, n_out, K=c.K, aggr=c.aggr,
                                                   aggr_width=c.aggr_width),
        defaults=dict(epochs=100, patience=0, lr=0.2, K=2, dropout=0.0, weight_decay=5e-5),
        depth_field="K"),
}

# Split and preprocessing by data set, for every model.
DATASET_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "cs": dict(split="random", lcc=False),
    "physics": dict(split="random", lcc=False),
    # The authors draw Amazon splits inside the largest connected component.
    "computers": dict(split="random", lcc=True),
    "photo": dict(split="random", lcc=True),
    "ogbn-arxiv": dict(split="public", normalize_features=False),
}


def _train():
    from .. import train

    return train


STOPPING: Dict[str, Callable[[CitationConfig], Any]] = {
    "dagnn": lambda c: _train().DAGNNStopping(c.patience, c.epochs),
    "patience": lambda c: _train().Patience(c.patience),
}
SPLITS = ("public", "random", "random_authors")
SELECT = ("val_loss", "val_acc")
#: The smallest value of each field the over-smoothing analysis sweeps.
MIN_DEPTH = {"K": 0, "num_layers": 1}


def defaults_for(model: str, dataset: str) -> CitationConfig:
    """The config of ``model`` on ``dataset`` before command-line overrides."""
    from ..datasets.citation import dataset_key

    check_choice("model", model, MODELS)
    key = dataset_key(dataset)
    values = dict(MODELS[model].defaults, **DATASET_DEFAULTS.get(key, {}))
    values.update(MODELS[model].dataset_defaults.get(key, {}))
    return dataclasses.replace(CitationConfig(model=model, dataset=dataset), **values)


def check_options(c: CitationConfig) -> None:
    """The options that need no library (instant, before torch is imported)."""
    nonneg = ("patience", "weight_decay", "K", "alpha", "time_propagate_runs")
    check_positive(c, "runs", "epochs", "lr", "hidden", "num_layers", "train_per_class",
                   "val_per_class", "aggr_width", *nonneg, allow_zero=nonneg)
    check_fraction(c, "dropout", "input_dropout")
    for name, choices in (("model", MODELS), ("split", SPLITS), ("select", SELECT),
                          ("stopping", STOPPING)):
        check_choice(name, getattr(c, name), choices)
    for m in c.analysis_models:
        check_choice("analysis-models", m, MODELS)
        low = MIN_DEPTH[MODELS[m].depth_field]
        if any(d < low for d in c.depths):
            raise ValueError(f"--depths sweeps {MODELS[m].depth_field} of {m}, which must be "
                             f">= {low} (got {c.depths})")
    if c.time_propagate_runs and c.model != "dagnn":
        raise ValueError("--time-propagate-runs times DAGNN's propagate() path; use --model dagnn")


def validate(c: CitationConfig) -> None:
    """Every option, before any data is loaded."""
    from ..aggr import aggregator_class
    from ..datasets.citation import dataset_key

    check_options(c)
    dataset_key(c.dataset)
    aggregator_class(c.aggr)


# Runs ########################################################################

def load_data(c: CitationConfig):
    from ..datasets.citation import load_citation

    return load_citation(c.dataset, normalize_features=c.normalize_features)


def open_store(c: CitationConfig, out: Optional[str]):
    return _train().RunStore(out, "citation", dataclasses.asdict(c), ignore=RESUMABLE,
                             checkpoint_dir=c.checkpoint_dir)


def job(c: CitationConfig, prep, r: int, extra=None) -> Callable[[Any], Dict[str, Any]]:
    """Run ``r`` of ``c`` as a :func:`node_runs.run_series` job."""
    from . import node_runs

    spec = MODELS[c.model]
    return lambda checkpoint: node_runs.train_run(
        c, prep, r, lambda n_in, n_out: spec.build(c, n_in, n_out), spec.sparse_input,
        STOPPING[c.stopping](c) if c.patience else None, checkpoint, extra)


def run(c: CitationConfig, data=None, out: Optional[str] = None) -> Dict[str, Any]:
    """Train ``c.runs`` models (resuming from ``out``); the JSON-ready result
    (``finished_runs`` holds every run's record and curve)."""
    from . import node_runs

    validate(c)
    store = open_store(c, out)
    tic = time.perf_counter()
    prep = node_runs.prepare(c, load_data(c) if data is None else data)
    records = node_runs.run_series(store, [(f"run{r}", job(c, prep, r)) for r in range(c.runs)],
                                   f"{c.model} {c.dataset}")
    s = node_runs.summarize(records)
    table = format_table(
        ["model", "dataset", "split", "aggr", "runs", "test acc (%)", "wall s/run",
         "CPU s/run", "epochs"],
        [[c.model, c.dataset, c.split, c.aggr, s["test_acc"]["n"], fmt(s["test_acc"]),
          f"{s['seconds_per_run']['mean']:.2f}", f"{s['cpu_seconds_per_run']['mean']:.2f}",
          f"{s['epochs']['mean']:.0f}"]])
    result = {"environment": environment(), "num_nodes": prep.data.num_nodes,
              "num_edges": int(prep.data.edge_index.size(1)), "summary": s, "table": table,
              "runs": [{k: v for k, v in r.items() if k != "curve"} for r in records]}
    if c.time_propagate_runs:
        # Same protocol, same seeds, hops through MessagePassing.propagate.
        slow_c, n = dataclasses.replace(c, sparse_prop=False), min(c.time_propagate_runs, c.runs)
        slow = node_runs.run_series(
            store, [(f"propagate-run{r}", job(slow_c, prep, r)) for r in range(n)],
            "propagate() timing")
        result["propagate_timing"] = {"summary": node_runs.summarize(slow),
                                      "sparse_summary_same_runs": node_runs.summarize(records[:n])}
    result["wall_time_s"] = time.perf_counter() - tic
    return store.finish(result)


# Command line ################################################################

def add_arguments(parser: argparse.ArgumentParser) -> None:
    tables = [d for s in MODELS.values() for d in (s.defaults, *s.dataset_defaults.values())]
    per_model = {k for d in tables + list(DATASET_DEFAULTS.values()) for k in d}
    add_config_arguments(parser, CitationConfig,
                         defaults={k: "per model and data set" for k in per_model})


def config_for(args: argparse.Namespace) -> CitationConfig:
    """Defaults of the chosen model and data set, then the user's options."""
    chosen = config_from_args(CitationConfig(), args)
    check_options(chosen)
    return config_from_args(defaults_for(chosen.model, chosen.dataset), args)


def main(args: argparse.Namespace) -> Dict[str, Any]:
    c = config_for(args)
    validate(c)
    out = getattr(args, "out", None)
    if c.depths:
        from .oversmoothing import analysis

        result = analysis(c, out=out)
        print(f"\n## Over-smoothing on {c.dataset} ({c.runs} run(s) per depth)\n\n"
              f"{result['table']}" + (f"\nplot written to {c.plot}" if c.plot else ""))
        return result
    result = run(c, out=out)
    print("\n" + result["table"])
    for name, s in result.get("propagate_timing", {}).items():  # the same seeds
        print(f"{'sparse path' if name.startswith('sparse') else 'propagate()'}: "
              f"{s['cpu_seconds_per_run']['mean']:.2f} CPU s per run")
    print(f"wall time {result['wall_time_s']:.0f} s")
    return result
