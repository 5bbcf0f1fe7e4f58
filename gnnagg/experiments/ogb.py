"""OGB benchmarks (ogbg-mol*, ogbn-*) with any aggregator, on one or many processes.

Graph property prediction follows OGB's example (``examples/graphproppred/mol``,
`Hu et al., 2020 <https://arxiv.org/abs/2005.00687>`_: GIN / GCN, optionally a
virtual node, 5 x 300, dropout 0.5, batch 32, Adam 1e-3, 100 epochs, the
model at the best validation score); node property prediction trains OGB's
full-batch GCN / GraphSAGE. Both train through :func:`gnnagg.train.fit` with
any aggregator :func:`gnnagg.aggr.resolve` knows, and OGB's ``Evaluator``.
Finished seeds are kept in ``--out`` and the seed in progress checkpoints
its epochs, so rerunning a command resumes; ``--world-size N`` trains
data-parallel (:mod:`gnnagg.distributed`, also under torchrun).

Example::

    gnnagg run ogb --dataset ogbg-molhiv --model gin --aggr lcm --runs 3 \\
        --epochs 20 --out gin-lcm.json
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

from .common import (add_config_arguments, check_choice, check_fraction, check_positive,
                     config_from_args, environment, fmt, format_table, mean_std, option,
                     over_runs, seed_everything)

#: The result file is written by :class:`gnnagg.train.RunStore`, not the CLI.
WRITES_OUT = True


@dataclasses.dataclass
class OGBConfig:
    dataset: str = option("ogbg-molhiv", "OGB data set: ogbg-molhiv, ogbg-molesol, "
                           "ogbg-molfreesolv, ogbn-arxiv, ... (any ogbg-mol* or ogbn-* name)")
    model: str = option("gin-virtual", "graph sets: gin, gin-virtual, gcn, gcn-virtual; "
                         "node sets: gcn, sage")
    aggr: str = option("sum", "neighbourhood aggregator for gnnagg.aggr.resolve (sum, mean, "
                        "max, lcm, gru, ...; 'sum,max' concatenates several)")
    runs: int = option(10, "independent seeds")
    epochs: int = option(100, "epochs per run")
    seed: int = option(0, "run r uses seed + r")
    batch_size: int = option(32, "graphs per optimiser step, over all processes (ogbg only)")
    lr: float = option(1e-3, "Adam learning rate")
    num_layers: int = option(5, "message-passing layers")
    hidden_channels: int = option(300, "embedding size")
    dropout: float = option(0.5, "dropout")
    jk: str = option("last", "jumping knowledge: last, sum (ogbg only)")
    pooling: str = option("mean", "graph pooling aggregator (ogbg only)")
    amp: bool = option(False, "bfloat16 autocast (about 2x faster on CPUs with AVX512-BF16; "
                        "on CPU memory grows with every new batch shape, see docs/ogb.md)")
    subset: Optional[int] = option(None, "use only the first N graphs (or nodes) of each "
                                    "split (smoke tests)")
    world_size: int = option(1, "data-parallel processes to spawn on this machine (ogbg "
                              "only; torchrun sets its own)")
    checkpoint_dir: Optional[str] = option(None, "folder for the epoch checkpoints of the "
                                            "seed in progress")
    save_models: Optional[str] = option(None, "folder: save each seed's model at its "
                                         "selected epoch as seed-<s>.pt")
    device: Optional[str] = option(None, "cpu, cuda or cuda:N")


#: Options that may change between an interrupted experiment and its resumption.
RESUMABLE_CHANGES = ("runs", "world_size", "checkpoint_dir", "save_models", "device")
#: Options that only graph property prediction uses.
GRAPH_ONLY = ("batch_size", "jk", "pooling", "world_size")
#: OGB task types the graph runner trains (its models embed molecules).
GRAPH_TASK_TYPES = ("binary classification", "regression")
#: How the table shows each OGB metric: name, scale, digits (the JSON keeps OGB's values).
DISPLAY = {"rocauc": ("ROC-AUC (%)", 100.0, 2), "ap": ("AP (%)", 100.0, 2),
           "acc": ("accuracy (%)", 100.0, 2), "F1": ("F1 (%)", 100.0, 2),
           "rmse": ("RMSE", 1.0, 3), "mae": ("MAE", 1.0, 3)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, OGBConfig, defaults={
        "checkpoint_dir": "a hidden folder next to --out", "device": "cuda when available",
        "subset": "all", "save_models": "none"})


def main(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    return run(config_from_args(OGBConfig(), args), out=getattr(args, "out", None))


# Validation (before any data work) ##########################################

def dataset_info(name: str) -> Dict[str, str]:
    """OGB's properties of ``name`` (:func:`gnnagg.datasets.ogb_catalogue.dataset_info`);
    a set this runner's models do not take is a ``ValueError`` saying why."""
    from ..datasets.ogb_catalogue import dataset_info as ogb_info

    info = ogb_info(name)
    task, kind = info["task"], info["task type"]
    if task == "ogbg" and not (name.startswith("ogbg-mol") and kind in GRAPH_TASK_TYPES):
        raise ValueError(f"{name} ({kind}) is not supported: the graph models embed atoms and "
                         f"bonds, so they take the ogbg-mol* sets ({' or '.join(GRAPH_TASK_TYPES)})")
    if task == "ogbn" and (kind != "multiclass classification" or info["is hetero"] == "True"
                           or info["has_node_attr"] != "True"):
        raise ValueError(f"{name} is not supported: the node models take homogeneous graphs "
                         f"with node features and one class per node (ogbn-arxiv, ogbn-products)")
    return info


def _aggr_query(text: str):
    return text.split(",") if "," in text else text


def validate(config: OGBConfig) -> Dict[str, str]:
    """Check every option; return the data set's OGB properties."""
    check_positive(config, "runs", "epochs", "batch_size", "lr", "num_layers",
                   "hidden_channels", "subset", "world_size")
    check_fraction(config, "dropout")
    info = dataset_info(config.dataset)
    if info["task"] == "ogbn":
        given = [f"--{k.replace('_', '-')}" for k in GRAPH_ONLY
                 if getattr(config, k) != getattr(OGBConfig, k)]
        if given:
            raise ValueError(f"{', '.join(given)}: only for graph property prediction; "
                             f"{config.dataset} trains full-batch on its nodes, in one process")
    elif config.batch_size % config.world_size:
        raise ValueError(f"--batch-size ({config.batch_size}) must be divisible by "
                         f"--world-size ({config.world_size})")
    from ..aggr import aggregator_class
    from ..distributed import check_device
    from ..models.ogb import GRAPH_MODELS, JK_MODES, NODE_CONVS

    check_choice("model", config.model, GRAPH_MODELS if info["task"] == "ogbg" else NODE_CONVS)
    check_choice("jk", config.jk, JK_MODES)
    for name in config.aggr.split(",") + config.pooling.split(","):
        aggregator_class(name)
    check_device(config.device)
    return info


# Data #######################################################################

def _loaders():
    from ..datasets.ogb import load_graph_dataset, load_node_dataset

    return {"ogbg": load_graph_dataset, "ogbn": load_node_dataset}


def _prepare(config: OGBConfig, info: Dict[str, str], ctx) -> SimpleNamespace:
    from ..datasets.ogb import node_graph, split_indices
    from ..metrics import evaluator_for

    dataset = _loaders()[info["task"]](config.dataset)
    data = SimpleNamespace(task=info["task"], dataset=dataset, metric=info["eval metric"],
                           split=split_indices(dataset, config.subset),
                           evaluator=evaluator_for(config.dataset))
    if info["task"] == "ogbn":
        data.x, data.y, data.edge_index = node_graph(dataset, ctx.device)
        data.num_classes = int(data.y.max()) + 1
    return data


# One seed ###################################################################

def build_graph_model(config: OGBConfig, num_tasks: int):
    from ..models.ogb import GRAPH_MODELS, OGBGraphModel

    return OGBGraphModel(num_tasks, aggr=_aggr_query(config.aggr), num_layers=config.num_layers,
                         hidden_channels=config.hidden_channels, dropout=config.dropout,
                         jk=config.jk, pooling=_aggr_query(config.pooling),
                         **GRAPH_MODELS[config.model])


def _graph_task(ctx, config: OGBConfig, data, seed: int):
    from .. import distributed as D
    from ..aggr import SegmentAggregation
    from ..train.tasks import graph_property

    model = build_graph_model(config, data.dataset.num_tasks)
    # Workaround, to delete once gnnagg's aggregators use their identity parameter in every
    # batch: until then DDP must be told that a batch may leave a parameter unused.
    unused = any(isinstance(m, SegmentAggregation) for m in model.modules())
    model = D.wrap_model(model, ctx, find_unused_parameters=unused)
    batches, loss_fn, evaluate = graph_property(
        data.dataset, data.split, data.evaluator, config.batch_size,
        eval_batch_size=max(config.batch_size, 256), seed=seed, ctx=ctx)
    return model, loss_fn, evaluate, batches


def _node_task(ctx, config: OGBConfig, data, seed: int):
    from ..models.ogb import OGBNodeModel
    from ..train.tasks import node_property

    model = OGBNodeModel(data.x.size(1), data.num_classes, conv=config.model,
                         aggr=_aggr_query(config.aggr), num_layers=config.num_layers,
                         hidden_channels=config.hidden_channels,
                         dropout=config.dropout).to(ctx.device)
    return model, *node_property(data.x, data.edge_index, data.y, data.split, data.evaluator), None


def run_seed(ctx, config: OGBConfig, data, seed: int, checkpoint) -> Dict[str, Any]:
    """Train one seed with :func:`gnnagg.train.fit`; its record for the result file."""
    import torch

    from .. import distributed as D
    from ..train import fit, save_atomic

    seed_everything(seed)
    model, loss_fn, evaluate, batches = (_graph_task if data.task == "ogbg" else _node_task)(
        ctx, config, data, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    result = fit(model, optimizer, loss_fn, evaluate, epochs=config.epochs, train_data=batches,
                 monitor=f"valid_{data.metric}", amp=config.amp, checkpoint=checkpoint,
                 ctx=ctx, desc=f"seed {seed}")
    if config.save_models and ctx.is_main:
        save_atomic(D.unwrap(model).state_dict(), Path(config.save_models) / f"seed-{seed}.pt")
    train_s = [row["train_seconds"] for row in result.curve]
    return {"seed": seed, **result.as_dict(), "world_size": ctx.world_size,
            "seconds_per_epoch": sum(train_s) / len(train_s),
            "parameters_equal_across_ranks": D.all_equal_parameters(model, ctx)}


# Runs and report ############################################################

def _all_runs(ctx, config: OGBConfig, info: Dict[str, str], store) -> List[Dict[str, Any]]:
    from .. import distributed as D

    with D.local_main_first(ctx):  # under torchrun nobody prepared the data before
        data = _prepare(config, info, ctx)
    keys = [f"seed={config.seed + r}" for r in range(config.runs)]
    done = set(D.broadcast([k for k in keys if k in store], ctx))  # rank 0's file decides
    records = []
    for r, key in enumerate(keys):
        if key in done:
            records.append(store.get(key))
            continue
        records.append(run_seed(ctx, config, data, config.seed + r, store.checkpoint(key)))
        if ctx.is_main:
            store.put(key, records[-1], partial=summarise(config, info, records))
    return records


def summarise(config: OGBConfig, info: Dict[str, str], records) -> Dict[str, Any]:
    """Mean +- std at each seed's selected epoch, and the printed table."""
    metric = info["eval metric"]
    name, scale, digits = DISPLAY.get(metric, (metric, 1.0, 4))
    summary = over_runs(records, [f"valid_{metric}", f"test_{metric}"], lambda r, k: r["best"][k])
    summary["best_epoch"] = mean_std([r["best_epoch"] for r in records])
    table = format_table(
        ["dataset", "model", "aggr", "runs", "epochs", f"valid {name}", f"test {name}",
         "best epoch", "train s/epoch", "processes"],
        [[config.dataset, config.model, config.aggr, len(records), config.epochs,
          fmt(summary[f"valid_{metric}"], scale, digits),
          fmt(summary[f"test_{metric}"], scale, digits),
          fmt(summary["best_epoch"], 1.0, 1),
          f"{mean_std([r['seconds_per_epoch'] for r in records])['mean']:.1f}",
          "/".join(sorted({str(r["world_size"]) for r in records}))]])
    return {"metric": metric, "monitor": f"valid_{metric}", "summary": summary,
            "table": table, "table_scale": {"metric": name, "scale": scale}}


def run(config: OGBConfig, out: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """All seeds of ``config``; finished ones are kept in ``out`` (JSON)
    and skipped when the same command runs again."""
    from .. import distributed as D
    from ..train import RunStore

    info = validate(config)
    if config.checkpoint_dir and not out:
        raise ValueError("--checkpoint-dir holds the epochs of the seed in progress; finished "
                         "seeds are kept in the --out file: give --out too")
    store = RunStore(out, "ogb", dataclasses.asdict(config), ignore=RESUMABLE_CHANGES,
                     checkpoint_dir=config.checkpoint_dir)
    if config.world_size > 1 and not D.under_launcher():
        # Process the data set once here, so that spawned workers only read it.
        _loaders()[info["task"]](config.dataset)
    records = D.launch(_all_runs, (config, info, store), world_size=config.world_size,
                       device=config.device)
    if records is None:  # a non-zero rank under torchrun
        return None
    for record in records:  # spawned workers recorded them in their own copy
        if f"seed={record['seed']}" not in store:
            store.put(f"seed={record['seed']}", record)
    result = summarise(config, info, records)
    print(result["table"])
    return store.finish({**result, "runs": records, "environment": environment()})
