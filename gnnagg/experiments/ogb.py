"""OGB benchmarks (ogbg-mol*, ogbn-*) with any aggregator, on one or many processes.

Graph property prediction follows the OGB example
(``examples/graphproppred/mol/main_pyg.py``, `Hu et al., 2020
<https://arxiv.org/abs/2005.00687>`_): GIN / GCN with or without a virtual
node, 5 layers, 300 hidden, dropout 0.5, batch 32, Adam lr 1e-3, 100 epochs,
the model taken at the best validation score, OGB's ``Evaluator``; the
aggregator is anything :func:`gnnagg.aggr.resolve` knows. Node property
prediction (``ogbn-arxiv``, ``ogbn-products``) trains OGB's full-batch
GCN / GraphSAGE baseline.

Each run writes ``<checkpoint-dir>/run-<r>.pt`` after every epoch
(atomically), so a rerun with the same options resumes where it stopped;
``--world-size N`` trains data-parallel on N local processes (see
:mod:`gnnagg.distributed`, also for torchrun across machines).

Example::

    gnnagg run ogb --dataset ogbg-molhiv --model gin --aggr lcm --runs 3 \\
        --epochs 20 --checkpoint-dir ckpt/gin-lcm --out gin-lcm.json
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed as D
from .common import (add_config_arguments, config_from_args, environment, fmt, format_table,
                     mean_std, progress, set_seed)


@dataclasses.dataclass
class OGBConfig:
    dataset: str = dataclasses.field(default="ogbg-molhiv", metadata={
        "help": "OGB data set: ogbg-molhiv, ogbg-molesol, ogbg-molfreesolv, ogbn-arxiv, ..."})
    model: str = dataclasses.field(default="gin-virtual", metadata={
        "help": "graph sets: gin, gin-virtual, gcn, gcn-virtual; node sets: gcn, sage"})
    aggr: str = dataclasses.field(default="sum", metadata={
        "help": "neighbourhood aggregator for gnnagg.aggr.resolve (sum, mean, max, lcm, gru, ...)"})
    runs: int = dataclasses.field(default=10, metadata={"help": "independent seeds"})
    epochs: int = dataclasses.field(default=100, metadata={"help": "epochs per run"})
    seed: int = dataclasses.field(default=0, metadata={"help": "run r uses seed + r"})
    batch_size: int = dataclasses.field(default=32, metadata={
        "help": "graphs per optimiser step, over all processes"})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "Adam learning rate"})
    num_layers: int = dataclasses.field(default=5, metadata={"help": "message-passing layers"})
    hidden_channels: int = dataclasses.field(default=300, metadata={"help": "embedding size"})
    dropout: float = dataclasses.field(default=0.5, metadata={"help": "dropout"})
    jk: str = dataclasses.field(default="last", metadata={"help": "jumping knowledge: last, sum"})
    pooling: str = dataclasses.field(default="mean", metadata={"help": "graph pooling aggregator"})
    amp: bool = dataclasses.field(default=False, metadata={
        "help": "bfloat16 autocast for the forward pass (about 2x faster on CPUs with "
                "AVX512-BF16; on CPU memory grows with every new batch shape, see docs/ogb.md)"})
    subset: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "use only the first N graphs of each split (smoke tests)"})
    world_size: int = dataclasses.field(default=1, metadata={
        "help": "data-parallel processes to spawn on this machine (torchrun sets its own)"})
    checkpoint_dir: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "folder for per-run checkpoints; rerunning resumes from them"})
    device: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "cpu or cuda (default: cuda when available)"})


#: Options that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("runs", "epochs", "world_size", "checkpoint_dir", "device")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, OGBConfig)


def main(args: argparse.Namespace) -> Dict[str, Any]:
    return run(config_from_args(OGBConfig(), args))


# Data #######################################################################

def _loaders() -> Dict[str, Callable[[str], Any]]:
    from ..datasets.ogb import load_graph_dataset, load_node_dataset

    return {"ogbg": load_graph_dataset, "ogbn": load_node_dataset}


def task_of(name: str) -> str:
    prefix = name.split("-", 1)[0]
    if prefix not in TASKS:
        raise ValueError(f"unknown OGB data set '{name}': expected a name starting with "
                         f"{sorted(p + '-' for p in TASKS)}")
    return prefix


def split_indices(dataset, subset: Optional[int]) -> Dict[str, torch.Tensor]:
    split = dataset.get_idx_split()
    out = {k: torch.as_tensor(split[k], dtype=torch.long) for k in ("train", "valid", "test")}
    if subset is not None:
        if subset < 1:
            raise ValueError(f"subset must be a positive number of graphs (got {subset})")
        out = {k: v[:subset] for k, v in out.items()}
    return out


# Checkpoints ################################################################

def fingerprint(config: OGBConfig) -> str:
    """What a checkpoint must agree on with the options that resume it."""
    kept = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUMABLE_CHANGES}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and ``os.replace``: a crash
    leaves the previous checkpoint intact, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, config: OGBConfig) -> Optional[Dict[str, Any]]:
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint(config):
        raise ValueError(f"checkpoint {path} was written with other options "
                         f"({state.get('config')}); use another --checkpoint-dir")
    return state


def _rng_state() -> Dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


# Graph property prediction ##################################################

def build_graph_model(config: OGBConfig, num_tasks: int):
    from ..models.ogb import GRAPH_MODELS, OGBGraphModel

    if config.model not in GRAPH_MODELS:
        raise ValueError(f"unknown model '{config.model}' for {config.dataset} "
                         f"(expected one of {sorted(GRAPH_MODELS)})")
    return OGBGraphModel(num_tasks, aggr=config.aggr, num_layers=config.num_layers,
                         hidden_channels=config.hidden_channels, dropout=config.dropout,
                         jk=config.jk, pooling=config.pooling, **GRAPH_MODELS[config.model])


def _forward(model, batch, device, amp: bool):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(batch.x.to(device), batch.edge_index.to(device),
                    batch.edge_attr.to(device), batch.batch.to(device), batch.num_graphs)
    return out.float()


#: Training loss by OGB task type.
LOSSES: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "binary classification": F.binary_cross_entropy_with_logits,
    "regression": F.mse_loss,
}


def train_epoch(model, loader, optimizer, device, amp: bool, loss_fn) -> float:
    """One pass over this rank's share of the training graphs; the mean loss."""
    from ..aggr import regularization_loss

    model.train()
    total, count = 0.0, 0
    for batch in loader:
        out = _forward(model, batch, device, amp)
        y = batch.y.to(device).float().view(out.shape)
        labeled = y == y  # NaN marks a missing label in multi-task sets
        if not bool(labeled.any()):
            raise ValueError("a training batch has no labelled target")
        loss = loss_fn(out[labeled], y[labeled])
        loss = loss + regularization_loss(D.unwrap(model))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * batch.num_graphs
        count += batch.num_graphs
    return total / max(count, 1)


@torch.no_grad()
def predict(model, dataset, indices: torch.Tensor, ctx: D.Context, batch_size: int,
            amp: bool) -> torch.Tensor:
    """Predictions for ``indices`` (in order), computed in shards over the
    ranks and gathered on every rank."""
    from ..datasets.ogb import FastGraphLoader

    model.eval()
    positions = D.eval_shard(indices.numel(), ctx)
    loader = FastGraphLoader(dataset, indices[positions], batch_size=batch_size)
    # Evaluation goes around DDP: the forward pass needs no synchronisation.
    net = D.unwrap(model)
    parts = [_forward(net, b, ctx.device, amp).cpu() for b in loader]
    pred = torch.cat(parts) if parts else torch.zeros(0, dataset.num_tasks)
    return D.gather_predictions(pred, positions, indices.numel(), ctx)


def evaluate(model, dataset, indices, evaluator, ctx, batch_size, amp) -> float:
    pred = predict(model, dataset, indices, ctx, batch_size, amp)
    y = dataset._data.y[indices]
    return float(evaluator.eval({"y_true": y.view(pred.shape), "y_pred": pred})[evaluator.eval_metric])


def graph_run(ctx: D.Context, config: OGBConfig, run: int) -> Dict[str, Any]:
    """One seed of graph property prediction on this rank; resumes from its
    checkpoint when there is one."""
    from ogb.graphproppred import Evaluator

    from ..aggr.base import SegmentAggregation
    from ..datasets.ogb import FastGraphLoader

    dataset = _loaders()["ogbg"](config.dataset)
    split = split_indices(dataset, config.subset)
    evaluator = Evaluator(config.dataset)
    higher_better = evaluator.eval_metric not in ("rmse", "mae")
    seed = config.seed + run
    set_seed(seed)
    model = build_graph_model(config, dataset.num_tasks)
    # gnnagg's aggregators may leave a parameter unused in a batch (e.g. the
    # identity of empty neighbourhoods), which DDP must be told about.
    unused = any(isinstance(m, SegmentAggregation) for m in model.modules())
    model = D.wrap_model(model, ctx, find_unused_parameters=unused)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if config.batch_size % ctx.world_size:
        raise ValueError(f"batch_size ({config.batch_size}) must be divisible by the "
                         f"number of processes ({ctx.world_size})")
    sampler = D.train_sampler(split["train"].numel(), ctx, seed=seed)
    loader = FastGraphLoader(dataset, split["train"], config.batch_size // ctx.world_size,
                             sampler=sampler)
    if dataset.task_type not in LOSSES:
        raise ValueError(f"{config.dataset}: task type '{dataset.task_type}' is not "
                         f"supported (expected one of {sorted(LOSSES)})")

    path = Path(config.checkpoint_dir) / f"run-{run}.pt" if config.checkpoint_dir else None
    state = load_checkpoint(path, config) if path is not None else None
    history: List[Dict[str, float]] = []
    best = {"epoch": -1, "valid": -float("inf") if higher_better else float("inf"),
            "test": float("nan"), "train_loss": float("nan")}
    start = 0
    if state is not None:
        D.unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        history, best, start = state["history"], state["best"], state["epoch"] + 1
    bar = progress(range(start, config.epochs), desc=f"run {run}", initial=start,
                   total=config.epochs, **({} if ctx.is_main else {"disable": True}))
    for epoch in bar:
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        loss = train_epoch(model, loader, optimizer, ctx.device, config.amp,
                           LOSSES[dataset.task_type])
        D.sync_buffers(model, ctx)
        train_s = time.perf_counter() - t0
        eval_bs = max(config.batch_size, 256)
        valid = evaluate(model, dataset, split["valid"], evaluator, ctx, eval_bs, config.amp)
        test = evaluate(model, dataset, split["test"], evaluator, ctx, eval_bs, config.amp)
        eval_s = time.perf_counter() - t0 - train_s
        history.append({"epoch": epoch, "loss": loss, "valid": valid, "test": test,
                        "train_seconds": train_s, "eval_seconds": eval_s})
        if (valid > best["valid"]) if higher_better else (valid < best["valid"]):
            best = {"epoch": epoch, "valid": valid, "test": test, "train_loss": loss}
        if ctx.is_main:
            bar.set_postfix(loss=f"{loss:.4f}", valid=f"{valid:.4f}", test=f"{test:.4f}",
                            s=f"{train_s:.0f}")
        if path is not None and ctx.is_main:
            save_atomic({"fingerprint": fingerprint(config), "config": dataclasses.asdict(config),
                         "run": run, "epoch": epoch, "model": D.unwrap(model).state_dict(),
                         "optimizer": optimizer.state_dict(), "rng": _rng_state(),
                         "history": history, "best": best}, path)
        D.barrier(ctx)
    train_times = [h["train_seconds"] for h in history]
    return {"run": run, "seed": seed, "epochs": len(history), "best": best,
            "metric": evaluator.eval_metric, "history": history,
            "seconds_per_epoch": float(np.mean(train_times)) if train_times else float("nan"),
            "parameters_equal_across_ranks": D.all_equal_parameters(model, ctx),
            "world_size": ctx.world_size}


# Node property prediction ###################################################

def node_run(ctx: D.Context, config: OGBConfig, run: int) -> Dict[str, Any]:
    """One seed of full-batch node property prediction (OGB's arxiv
    baseline: Adam, cross-entropy on the training nodes)."""
    from ogb.nodeproppred import Evaluator
    from torch_geometric.utils import to_undirected

    from ..models.ogb import NODE_CONVS, OGBNodeModel

    if ctx.distributed:
        raise ValueError("node property prediction trains full-batch on one process; "
                         "use --world-size 1")
    if config.model not in NODE_CONVS:
        raise ValueError(f"unknown model '{config.model}' for {config.dataset} "
                         f"(expected one of {sorted(NODE_CONVS)})")
    dataset = _loaders()["ogbn"](config.dataset)
    data = dataset[0]
    split = split_indices(dataset, config.subset)
    edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes).to(ctx.device)
    x, y = data.x.to(ctx.device), data.y.view(-1).to(ctx.device)
    evaluator = Evaluator(config.dataset)
    seed = config.seed + run
    set_seed(seed)
    model = OGBNodeModel(data.num_features, int(y.max()) + 1, conv=config.model,
                         aggr=config.aggr, num_layers=config.num_layers,
                         hidden_channels=config.hidden_channels,
                         dropout=config.dropout).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    best = {"epoch": -1, "valid": -float("inf"), "test": float("nan")}
    history = []
    for epoch in progress(range(config.epochs), desc=f"run {run}"):
        t0 = time.perf_counter()
        model.train()
        optimizer.zero_grad()
        loss = F.nll_loss(model(x, edge_index)[split["train"]], y[split["train"]])
        loss.backward()
        optimizer.step()
        train_s = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            pred = model(x, edge_index).argmax(dim=-1, keepdim=True).cpu()
        scores = {k: evaluator.eval({"y_true": data.y[split[k]].view(-1, 1),
                                     "y_pred": pred[split[k]]})[evaluator.eval_metric]
                  for k in ("valid", "test")}
        history.append({"epoch": epoch, "loss": loss.item(), **scores, "train_seconds": train_s})
        if scores["valid"] > best["valid"]:
            best = {"epoch": epoch, **scores}
    return {"run": run, "seed": seed, "epochs": len(history), "best": best,
            "metric": evaluator.eval_metric, "history": history, "world_size": 1,
            "seconds_per_epoch": float(np.mean([h["train_seconds"] for h in history]))}


#: Runner of one seed by task prefix.
TASKS: Dict[str, Callable[[D.Context, OGBConfig, int], Dict[str, Any]]] = {
    "ogbg": graph_run,
    "ogbn": node_run,
}
#: Whether a task trains data-parallel over several processes.
MULTI_PROCESS: Dict[str, bool] = {"ogbg": True, "ogbn": False}


def _all_runs(ctx: D.Context, config: OGBConfig) -> List[Dict[str, Any]]:
    # Under torchrun nobody prepared the data before the workers started.
    with D.local_main_first(ctx):
        _loaders()[task_of(config.dataset)](config.dataset)
    return [TASKS[task_of(config.dataset)](ctx, config, r) for r in range(config.runs)]


# Entry point ################################################################

def run(config: OGBConfig) -> Dict[str, Any]:
    """All runs of ``config``; the result dict the CLI writes as JSON."""
    if config.runs < 1 or config.epochs < 1:
        raise ValueError(f"runs and epochs must be positive (got {config.runs}, {config.epochs})")
    task = task_of(config.dataset)
    if config.world_size > 1 and not MULTI_PROCESS[task]:
        raise ValueError(f"{config.dataset}: node property prediction trains full-batch "
                         f"on one process; use --world-size 1")
    if config.world_size > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        # Prepare the data set once here, so that spawned workers only read
        # processed files (under torchrun, see _all_runs).
        _loaders()[task](config.dataset)
    runs = D.launch(_all_runs, (config,), world_size=config.world_size, device=config.device)
    if runs is None:  # a non-zero rank under torchrun
        return None
    summary = {k: mean_std([r["best"][k] for r in runs]) for k in ("valid", "test")}
    metric = runs[0]["metric"]
    table = format_table(
        ["dataset", "model", "aggr", "runs", "epochs", f"valid {metric}", f"test {metric}",
         "s/epoch", "processes"],
        [[config.dataset, config.model, config.aggr, len(runs), config.epochs,
          fmt(summary["valid"]), fmt(summary["test"]),
          f"{np.mean([r['seconds_per_epoch'] for r in runs]):.1f}", runs[0]["world_size"]]])
    print(table)
    return {"experiment": "ogb", "config": dataclasses.asdict(config), "metric": metric,
            "summary": summary, "runs": runs, "table": table, "environment": environment()}
