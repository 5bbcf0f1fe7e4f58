"""Node classification on heterogeneous graphs (ACM, DBLP, IMDB): LATTE and
the baselines HAN, HGT, R-GCN and HeteroConv-SAGE.

LATTE (Tran & Gao, 2020, https://arxiv.org/abs/2009.08072) and the
baselines of :mod:`gnnagg.models.hetero` are trained full-batch on the GTN
splits (:func:`gnnagg.datasets.gtn.load_gtn`), one :func:`gnnagg.train.fit`
per data set and seed; the test Macro- and Micro-F1 are those of the epoch
selected on the validation split (``--monitor``), mean +- std over seeds.
LATTE's defaults are the authors' settings (see docs/latte.md).

Transductive: the whole graph is seen in training, only training labels
are used. Inductive (``--inductive``, the authors' protocol): training sees
the graph without the validation and test nodes, validation the graph
without the test nodes, testing the whole graph.

Example::

    gnnagg run hetero --model latte --dataset ACM DBLP IMDB --order 2 --seeds 5 \\
        --out latte-2.json --plot latte-2-attention.png
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ..utils import check_writable
from .common import (add_config_arguments, check_choice, check_fraction, check_positive,
                     config_from_args, environment, fmt, format_table, mean_std, option,
                     over_runs, run_series, seed_everything)

WRITES_OUT = True
#: model -> its name in tables
MODELS = {"latte": "LATTE", "han": "HAN", "hgt": "HGT", "rgcn": "RGCN", "sage": "HeteroConv-SAGE"}
DATASETS = ("ACM", "DBLP", "IMDB")  # gnnagg.datasets.gtn.GTN_DATASETS, without importing torch
METRICS = ("val_loss", "val_macro_f1", "val_micro_f1", "test_macro_f1", "test_micro_f1")



@dataclass
class HeteroConfig:
    model: str = option("latte", "latte, han, hgt, rgcn or sage (HeteroConv of SAGEConv)")
    dataset: Tuple[str, ...] = option(("ACM",), "ACM, DBLP and/or IMDB")
    order: int = option(2, "LATTE's layers = highest relation order; HGT/RGCN/SAGE layers; "
                         "HAN: order - 1 layers")
    inductive: bool = option(False, "hide val/test nodes in training, test nodes in validation")
    seeds: int = option(5, "number of seeds")
    seed: int = option(0, "first seed")
    epochs: int = option(250, "maximum epochs")
    patience: int = option(10, "stop after this many epochs without a better --monitor (0: never)")
    monitor: str = option("val_loss", "selects the epoch: val_loss or val_macro_f1")
    lr: float = option(1e-3, "Adam's learning rate")
    weight_decay: float = option(1e-2, "Adam's weight decay")
    decay_biases: bool = option(True, "weight decay on biases and LATTE's sharpening too "
                                    "(authors: no)")
    features: str = option("raw", "raw (binary bag of words), row (row-normalised) or tfidf")
    hidden: int = option(128, "hidden size per layer (HAN/HGT: over all heads)")
    heads: int = option(2, "attention heads (LATTE, HAN, HGT)")
    dropout: float = option(0.4, "dropout (LATTE: before the classifier)")
    attn_dropout: float = option(0.2, "LATTE: attention dropout")
    layer_dropout: float = option(0.2, "LATTE: dropout after the input projection and every layer")
    input_projection: bool = option(True, "LATTE: linear+ReLU per node type before layer 1")
    layer_pooling: str = option("concat", "LATTE: concat, last, mean or max of the layers")
    edge_weight: str = option("attention", "LATTE: composed relations' weights as attention prior "
                                         "(attention), message factor (message) or unused (none)")
    edge_threshold: Optional[float] = option(None, "LATTE: compose layer t's relations from layer "
                                                 "t-1's edges with attention >= this "
                                                 "(authors: 0.5)")
    init: str = option("xavier", "LATTE: the authors' Xavier initialisation or PyTorch's (torch)")
    aggr: str = option("sum", "LATTE's per-relation / SAGE's aggregator "
                              "(gnnagg.aggr.resolve names)")
    proximity: float = option(0.0, "LATTE: weight of the proximity loss")
    negatives: int = option(2, "LATTE: proximity loss negatives per edge")
    cumulative: bool = option(False, "LATTE: layer t also uses relations of lower order")
    num_neighbors: Optional[Tuple[int, ...]] = option(
        None, "train on a neighbourhood of the training nodes sampled anew every epoch, with "
              "these fan-outs per hop over all relations (authors: 25 20; -1: all); "
              "evaluation sees the whole graph (default: full graph)")
    sampled_evaluation: bool = option(False, "with --num-neighbors: predict the validation and "
                                             "test nodes on neighbourhoods sampled around them "
                                             "at every evaluation (the authors' protocol)")
    plot: Optional[str] = option(None, "LATTE: draw the mean relation attention to FILE.png")


#: Each model's settings (its paper's or PyG example's); options override.
_BASELINE = {"epochs": 200, "patience": 30, "hidden": 64}
MODEL_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "latte": {},  # HeteroConfig's defaults are the authors' settings
    "han": {**_BASELINE, "heads": 8, "lr": 5e-3, "weight_decay": 1e-3, "dropout": 0.6},
    "hgt": {**_BASELINE, "heads": 4, "lr": 5e-3, "weight_decay": 1e-3, "dropout": 0.2},
    "rgcn": {**_BASELINE, "lr": 1e-2, "weight_decay": 5e-4, "dropout": 0.5},
    "sage": {**_BASELINE, "lr": 1e-2, "weight_decay": 5e-4, "dropout": 0.5, "aggr": "mean"},
}


def validate(config: HeteroConfig) -> None:
    """Every option, before any data is loaded."""
    check_choice("model", config.model, MODELS)
    for name in config.dataset:
        check_choice("dataset", name, DATASETS)
    if len(set(config.dataset)) != len(config.dataset):
        raise ValueError(f"--dataset names a data set twice ({' '.join(config.dataset)})")
    check_positive(config, "order", "seeds", "epochs", "hidden", "heads", "lr")
    check_positive(config, "seed", "patience", "weight_decay", "proximity", "negatives",
                   allow_zero=("seed", "patience", "weight_decay", "proximity", "negatives"))
    check_fraction(config, "dropout", "attn_dropout", "layer_dropout")
    check_choice("monitor", config.monitor, ("val_loss", "val_macro_f1"))
    if config.sampled_evaluation and not config.num_neighbors:
        raise ValueError("--sampled-evaluation needs --num-neighbors (the fan-outs to sample with)")
    if config.edge_threshold is not None and not 0.0 <= config.edge_threshold <= 1.0:
        raise ValueError(f"--edge-threshold must be in [0, 1] (got {config.edge_threshold})")
    if config.model in ("latte", "han", "hgt") and config.hidden % config.heads:
        raise ValueError(f"--hidden ({config.hidden}) must be divisible by --heads "
                         f"({config.heads}) for {config.model}")
    if config.model != "latte" and (config.proximity or config.plot):
        raise ValueError("--proximity and --plot are for --model latte")
    if config.plot:
        check_writable(config.plot, "--plot")
    from ..aggr.resolve import aggregator_class
    from ..datasets.transforms import FEATURE_TRANSFORMS, check_num_neighbors
    from ..models.latte import LAYER_POOLING
    from ..nn.latte import EDGE_WEIGHT_MODES, INITS

    for name, value, choices in (("features", config.features, FEATURE_TRANSFORMS),
                                 ("layer_pooling", config.layer_pooling, LAYER_POOLING),
                                 ("edge_weight", config.edge_weight, EDGE_WEIGHT_MODES),
                                 ("init", config.init, INITS)):
        check_choice(name, value, choices)
    aggregator_class(config.aggr)
    if config.num_neighbors is not None:
        check_num_neighbors(config.num_neighbors, "--num-neighbors")


# Data ########################################################################

def load_data(name: str):
    from ..datasets.gtn import load_gtn

    return load_gtn(name)


def prepared_data(name: str, features: str):
    """The data set ``name`` with its features preprocessed (``--features``)."""
    from ..datasets.transforms import preprocess_features

    data = load_data(name)
    for t in data.node_types:
        data[t].x = preprocess_features(data[t].x, features)
    return data


# Model and one run ###########################################################

def build_model(config: HeteroConfig, in_channels: Dict[str, int], num_classes: int, metadata,
                target: str):
    from .. import models

    if config.model == "latte":
        same = ("aggr", "heads", "dropout", "attn_dropout", "layer_dropout", "input_projection",
                "layer_pooling", "edge_weight", "edge_threshold", "init", "cumulative")
        return models.LATTE(in_channels, num_classes, metadata, target,
                            hidden_channels=config.hidden, num_layers=config.order,
                            num_negatives=config.negatives,
                            **{k: getattr(config, k) for k in same})
    args = (in_channels, config.hidden, num_classes, metadata, target)
    layers = max(1, config.order - 1) if config.model == "han" else config.order
    extra = {"heads": config.heads} if config.model in ("han", "hgt") else \
        {"aggr": config.aggr} if config.model == "sage" else {}
    cls = {"han": models.HAN, "hgt": models.HGT, "rgcn": models.RGCN, "sage": models.HeteroSAGE}
    return cls[config.model](*args, num_layers=layers, dropout=config.dropout, **extra)


def run_seed(data, config: HeteroConfig, seed: int, checkpoint=None) -> Dict[str, Any]:
    """Train one model; the selected epoch's scores, the curve and (LATTE)
    the mean relation attention of the target nodes."""
    import torch

    from ..datasets.transforms import inductive_edges, sample_neighbors
    from ..train import Patience, fit
    from ..train.tasks import node_classification

    seed_everything(seed)
    target, x = data.target_node_type, data.x_dict
    masks = [data[target][f"{s}_mask"] for s in ("train", "val", "test")]
    full = data.edge_index_dict
    graphs = (full, full, full)
    if config.inductive:
        graphs = (inductive_edges(data, target, masks[1] | masks[2]),
                  inductive_edges(data, target, masks[2]), full)
    if config.num_neighbors:  # the authors' mini-batches: every training node, sampled edges
        sizes = {t: v.size(0) for t, v in x.items()}

        def sampler(graph, mask):
            seeds = {target: mask.nonzero().view(-1)}
            return lambda: sample_neighbors(graph, sizes, seeds, config.num_neighbors)

        graphs = (sampler(graphs[0], masks[0]),
                  *((sampler(g, m) for g, m in zip(graphs[1:], masks[1:]))
                    if config.sampled_evaluation else graphs[1:]))
    model = build_model(config, {t: v.size(1) for t, v in x.items()}, data.num_classes,
                        data.metadata(), target)
    exempt = [not config.decay_biases and (n.endswith("bias") or "sharpening" in n)
              for n, _ in model.named_parameters()]  # the authors' optimiser groups
    params = list(model.parameters())
    optimizer = torch.optim.Adam(
        [{"params": [p for p, e in zip(params, exempt) if not e]},
         {"params": [p for p, e in zip(params, exempt) if e], "weight_decay": 0.0}],
        lr=config.lr, weight_decay=config.weight_decay)

    def forward(model, x, edges):
        if model.training and config.proximity > 0:  # LATTE's proximity loss, in training
            logits, proximity = model(x, edges, return_proximity_loss=True)
            return logits, config.proximity * proximity
        return model(x, edges)

    loss_fn, evaluate = node_classification(data, masks, x, metrics=("macro_f1", "micro_f1"),
                                            forward=forward, y=data[target].y, graphs=graphs)
    result = fit(model, optimizer, loss_fn, evaluate, epochs=config.epochs,
                 monitor=config.monitor, stopping=Patience(config.patience),
                 checkpoint=checkpoint, desc=f"{config.model} seed {seed}")
    record = {"seed": seed, **{k: result.best[k] for k in METRICS},
              "best_epoch": result.best_epoch, "epochs": result.epochs, "stopped": result.stopped,
              "seconds": result.seconds, "parameters": sum(p.numel() for p in model.parameters()),
              "curve": result.curve}
    if config.model == "latte":
        record["attention"] = model.relation_attention(x, full)
    return record


# Experiment ##################################################################

def summarize(runs: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    out = {}
    for name, records in runs.items():
        s = over_runs(records, (*METRICS, "best_epoch", "epochs", "seconds"))
        if records and "attention" in records[0]:
            s["attention"] = {layer: {rel: mean_std([r["attention"][layer][rel] for r in records])
                                      for rel in rels}
                              for layer, rels in records[0]["attention"].items()}
        out[name] = s
    return out


def label(config: HeteroConfig) -> str:
    """The model's row name in tables (``LATTE-2``, ``HAN``, ...)."""
    return f"LATTE-{config.order}" if config.model == "latte" else MODELS[config.model]


def run(config: HeteroConfig, out: Optional[str] = None) -> Dict[str, Any]:
    """Every data set and seed of one configuration; finished runs are kept
    in ``out`` as they finish, and a rerun resumes."""
    validate(config)
    from ..train import RunStore

    store = RunStore(out, "hetero", dataclasses.asdict(config), ignore=("seeds", "dataset", "plot"))
    loaded: Dict[str, Any] = {}  # one graph at a time, read when one of its runs is not finished

    def train(key: str, checkpoint) -> Dict[str, Any]:
        name, seed = key.rsplit("/seed", 1)
        if name not in loaded:
            loaded.clear()
            loaded[name] = prepared_data(name, config.features)
        return run_seed(loaded[name], config, int(seed), checkpoint)

    runs: Dict[str, List[Dict[str, Any]]] = {}
    for name in config.dataset:
        keys = [f"{name}/seed{s}" for s in range(config.seed, config.seed + config.seeds)]
        runs[name] = run_series(store, keys, train, partial=lambda records, name=name: {
            "summary": summarize({**runs, name: records})})
    summary = summarize(runs)
    if config.plot:
        from .plots import relation_attention

        relation_attention({name: s["attention"] for name, s in summary.items()}, config.plot,
                           title=f"{label(config)}" + (" (inductive)" if config.inductive else ""))
    return store.finish({"config": config, "label": label(config), "summary": summary,
                         "environment": environment()})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, HeteroConfig, defaults={
        k: f"{getattr(HeteroConfig, k)} for latte, per model otherwise"
        for k in ("epochs", "patience", "lr", "weight_decay", "hidden", "heads", "dropout",
                  "aggr")})


def config_from(args: argparse.Namespace) -> HeteroConfig:
    """The model's defaults, then the options given; data set names in
    upper case."""
    model = getattr(args, "model", None) or HeteroConfig.model
    check_choice("model", model, MODELS)
    config = config_from_args(dataclasses.replace(HeteroConfig(), **MODEL_DEFAULTS[model]), args)
    return dataclasses.replace(config, dataset=tuple(d.upper() for d in config.dataset))


def main(args: argparse.Namespace) -> Dict[str, Any]:
    config = config_from(args)
    result = run(config, getattr(args, "out", None))
    setting = "inductive" if config.inductive else "transductive"
    print(format_table(
        ["model", "data set", "setting", "Macro-F1", "Micro-F1", "val Macro-F1", "epochs", "s/run"],
        [[label(config), name, setting, fmt(s["test_macro_f1"]), fmt(s["test_micro_f1"]),
          fmt(s["val_macro_f1"]), f"{s['epochs']['mean']:.0f}", f"{s['seconds']['mean']:.1f}"]
         for name, s in result["summary"].items()]))
    return result


__all__ = ["HeteroConfig", "MODELS", "MODEL_DEFAULTS", "validate", "run", "run_seed", "main",
           "add_arguments", "build_model", "label"]
