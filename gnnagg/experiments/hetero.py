"""Node classification on heterogeneous graphs (ACM, DBLP, IMDB): LATTE vs HAN, HGT, RGCN.

LATTE (Tran & Gao, 2020, https://arxiv.org/abs/2009.08072) and three PyG
baselines (HANConv, HGTConv, RGCNConv) are trained full-batch on the GTN
splits (:func:`gnnagg.datasets.gtn.load_gtn`). Each run reports Macro- and
Micro-F1 on the test nodes at the epoch of lowest validation loss; the
summary is mean +- std over seeds.

Transductive: the whole graph is seen in training, only training labels
are used. Inductive (``--inductive``): the validation and test nodes' edges
are removed from the training graph, and evaluation uses the full graph.

Example::

    gnnagg run hetero --model latte --dataset DBLP --order 2 --seeds 5
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import (add_config_arguments, config_from_args, environment, fmt, format_table,
                     mean_std, progress, set_seed, write_json)

EdgeType = Tuple[str, str, str]


@dataclass
class HeteroConfig:
    model: str = field(default="latte", metadata={"help": "latte, han, hgt or rgcn"})
    dataset: str = field(default="ACM", metadata={"help": "ACM, DBLP or IMDB"})
    order: int = field(default=2, metadata={"help": "LATTE's number of layers = highest "
                                                    "relation order; baselines' depth"})
    inductive: bool = field(default=False, metadata={"help": "hide val/test nodes' edges "
                                                             "while training"})
    seeds: int = field(default=5, metadata={"help": "number of seeds"})
    seed: int = field(default=0, metadata={"help": "first seed"})
    epochs: int = field(default=200, metadata={"help": "maximum epochs"})
    patience: int = field(default=30, metadata={"help": "stop after this many epochs "
                                                        "without a lower validation loss"})
    lr: float = 1e-3
    weight_decay: float = 1e-2
    hidden: int = field(default=128, metadata={"help": "hidden size (HAN/HGT: total over heads)"})
    heads: int = field(default=8, metadata={"help": "attention heads of HAN/HGT"})
    dropout: float = 0.4
    attn_dropout: float = 0.2
    aggr: str = field(default="sum", metadata={"help": "LATTE's per-relation aggregator "
                                                       "(any gnnagg.aggr.resolve name)"})
    proximity: float = field(default=0.0, metadata={"help": "weight of LATTE's proximity loss"})
    cumulative: bool = field(default=False, metadata={"help": "LATTE layer t also uses "
                                                              "relations of lower order"})


#: Settings each model starts from (its paper's or PyG example's); any
#: option given on the command line overrides them.
MODEL_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "latte": {},
    "han": {"hidden": 64, "heads": 8, "lr": 5e-3, "weight_decay": 1e-3, "dropout": 0.6},
    "hgt": {"hidden": 64, "heads": 4, "lr": 5e-3, "weight_decay": 1e-3, "dropout": 0.2},
    "rgcn": {"hidden": 64, "lr": 1e-2, "weight_decay": 5e-4, "dropout": 0.5},
}


# Models ###################################################################

class TypedInput(nn.Module):
    """A linear map per node type to a shared size; accepts sparse features."""

    def __init__(self, in_channels: Dict[str, int], out_channels: int) -> None:
        super().__init__()
        self.lins = nn.ModuleDict({t: nn.Linear(c, out_channels) for t, c in in_channels.items()})

    def reset_parameters(self) -> None:
        for lin in self.lins.values():
            lin.reset_parameters()

    def forward(self, x_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        from ..nn.latte import typed_linear

        return {t: typed_linear(lin, x_dict[t]) for t, lin in self.lins.items()}


class LATTEClassifier(nn.Module):
    """:class:`gnnagg.models.LATTE`, keeping its proximity loss as ``aux_loss``."""

    def __init__(self, latte: nn.Module, proximity: float) -> None:
        super().__init__()
        self.latte = latte
        self.proximity = proximity
        self.aux_loss: Optional[Tensor] = None

    def forward(self, x_dict, edge_index_dict):
        if self.proximity > 0 and self.training:
            logits, loss = self.latte(x_dict, edge_index_dict, return_proximity_loss=True)
            self.aux_loss = self.proximity * loss
            return logits
        self.aux_loss = None
        return self.latte(x_dict, edge_index_dict)


class HAN(nn.Module):
    """HAN (Wang et al., 2019, https://arxiv.org/abs/1903.07293) with PyG's
    ``HANConv`` over the order-2 meta-paths from the target type back to
    itself (e.g. PAP, PSP), composed like LATTE's relations."""

    def __init__(self, in_channels: Dict[str, int], num_classes: int, metadata, target: str,
                 config: HeteroConfig) -> None:
        super().__init__()
        from torch_geometric.nn import HANConv

        from ..models.latte import chain_relations

        self.target = target
        self.first_order = list(metadata[1])
        self.metapaths = [r for r in chain_relations(self.first_order, 2)[1]
                          if r[0] == target and r[2] == target]
        if not self.metapaths:
            raise ValueError(f"no order-2 meta-path leads from '{target}' back to itself")
        # HANConv names parameters after edge types, which cannot hold dots.
        self.renamed = {r: (r[0], r[1].replace(".", "_"), r[2]) for r in self.metapaths}
        self.input = TypedInput({target: in_channels[target]}, config.hidden)
        self.convs = nn.ModuleList(
            HANConv(config.hidden, config.hidden, ([target], list(self.renamed.values())),
                    heads=config.heads, dropout=config.dropout)
            for _ in range(max(1, config.order - 1)))
        self.dropout = config.dropout
        self.classifier = nn.Linear(config.hidden, num_classes)
        self._cache: Dict[tuple, Tuple[tuple, Dict[EdgeType, Tensor]]] = {}

    def metapath_edges(self, edge_index_dict, num_nodes):
        from ..models.latte import compose_relations

        key = tuple((r, edge_index_dict[r].data_ptr(), edge_index_dict[r].size(1))
                    for r in self.first_order)
        if key not in self._cache:
            sub = {r: edge_index_dict[r] for r in self.first_order}
            levels = compose_relations(sub, num_nodes, 2, wanted=self.metapaths)
            self._cache[key] = (tuple(sub.values()),
                                {self.renamed[r]: levels[1][r][0] for r in self.metapaths})
        return self._cache[key][1]

    def forward(self, x_dict, edge_index_dict):
        num_nodes = {t: x.size(0) for t, x in x_dict.items()}
        edges = self.metapath_edges(edge_index_dict, num_nodes)
        h = {self.target: F.dropout(self.input(x_dict)[self.target], self.dropout, self.training)}
        for conv in self.convs:
            h = {self.target: F.elu(conv(h, edges)[self.target])}
        return self.classifier(F.dropout(h[self.target], self.dropout, self.training))


class HGT(nn.Module):
    """HGT (Hu et al., 2020, https://arxiv.org/abs/2003.01332) with PyG's
    ``HGTConv`` over the first-order relations."""

    def __init__(self, in_channels, num_classes, metadata, target, config: HeteroConfig) -> None:
        super().__init__()
        from torch_geometric.nn import HGTConv

        self.target = target
        self.input = TypedInput(in_channels, config.hidden)
        self.convs = nn.ModuleList(HGTConv(config.hidden, config.hidden, metadata,
                                           heads=config.heads) for _ in range(config.order))
        self.dropout = config.dropout
        self.classifier = nn.Linear(config.hidden, num_classes)

    def forward(self, x_dict, edge_index_dict):
        h = {t: F.relu(v) for t, v in self.input(x_dict).items()}
        for conv in self.convs:
            h = {t: F.dropout(v, self.dropout, self.training) for t, v in h.items()}
            h = conv(h, edge_index_dict)
        return self.classifier(h[self.target])


class RGCN(nn.Module):
    """R-GCN (Schlichtkrull et al., 2018, https://arxiv.org/abs/1703.06103)
    with PyG's ``RGCNConv`` on the graph made homogeneous, one relation per
    edge type."""

    def __init__(self, in_channels, num_classes, metadata, target, config: HeteroConfig) -> None:
        super().__init__()
        from torch_geometric.nn import RGCNConv

        self.target = target
        self.node_types = list(metadata[0])
        self.edge_types = list(metadata[1])
        self.input = TypedInput(in_channels, config.hidden)
        self.convs = nn.ModuleList(RGCNConv(config.hidden, config.hidden, len(self.edge_types))
                                   for _ in range(config.order))
        self.dropout = config.dropout
        self.classifier = nn.Linear(config.hidden, num_classes)

    def forward(self, x_dict, edge_index_dict):
        h_dict = self.input(x_dict)
        offsets, start = {}, 0
        for t in self.node_types:
            offsets[t] = start
            start += h_dict[t].size(0)
        h = torch.cat([h_dict[t] for t in self.node_types])
        edge_index = torch.cat([edge_index_dict[r] + torch.tensor([[offsets[r[0]]], [offsets[r[2]]]])
                                for r in self.edge_types], dim=1)
        edge_type = torch.cat([torch.full((edge_index_dict[r].size(1),), i, dtype=torch.long)
                               for i, r in enumerate(self.edge_types)])
        for conv in self.convs:
            h = F.dropout(F.relu(h), self.dropout, self.training)
            h = conv(h, edge_index, edge_type)
        first = offsets[self.target]
        return self.classifier(h[first:first + x_dict[self.target].size(0)])


def build_latte(in_channels, num_classes, metadata, target, config: HeteroConfig) -> nn.Module:
    from ..models.latte import LATTE

    return LATTEClassifier(LATTE(in_channels, num_classes, metadata, target,
                                 hidden_channels=config.hidden, num_layers=config.order,
                                 aggr=config.aggr, dropout=config.dropout,
                                 attn_dropout=config.attn_dropout,
                                 cumulative=config.cumulative), config.proximity)


#: model name -> builder(in_channels, num_classes, metadata, target, config)
MODELS: Dict[str, Callable[..., nn.Module]] = {
    "latte": build_latte,
    "han": HAN,
    "hgt": HGT,
    "rgcn": RGCN,
}


# Data #####################################################################

def inductive_edges(data, target: str, hidden: Tensor) -> Dict[EdgeType, Tensor]:
    """The edges that touch no ``hidden`` node of type ``target``."""
    out = {}
    for rel, edge_index in data.edge_index_dict.items():
        keep = torch.ones(edge_index.size(1), dtype=torch.bool)
        if rel[0] == target:
            keep &= ~hidden[edge_index[0]]
        if rel[2] == target:
            keep &= ~hidden[edge_index[1]]
        out[rel] = edge_index[:, keep]
    return out


# Training ###################################################################

def f1_scores(logits: Tensor, y: Tensor) -> Dict[str, float]:
    from sklearn.metrics import f1_score

    pred = logits.argmax(-1).numpy()
    true = y.numpy()
    return {"macro_f1": float(f1_score(true, pred, average="macro")),
            "micro_f1": float(f1_score(true, pred, average="micro"))}


def run_once(data, config: HeteroConfig, seed: int) -> Dict[str, Any]:
    """Train one model; test scores at the epoch of lowest validation loss."""
    set_seed(seed)
    target = data.target_node_type
    store = data[target]
    y = store.y
    masks = {s: store[f"{s}_mask"] for s in ("train", "val", "test")}
    eval_edges = data.edge_index_dict
    train_edges = (inductive_edges(data, target, masks["val"] | masks["test"])
                   if config.inductive else eval_edges)
    x_dict = data.x_dict
    in_channels = {t: x.size(1) for t, x in x_dict.items()}
    model = MODELS[config.model](in_channels, data.num_classes, data.metadata(), target, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    best = {"val_loss": float("inf")}
    history: List[float] = []
    start, wait, epoch = time.perf_counter(), 0, 0
    bar = progress(range(1, config.epochs + 1), desc=f"{config.model} {config.dataset} s{seed}",
                   leave=False)
    for epoch in bar:
        model.train()
        optimizer.zero_grad()
        logits = model(x_dict, train_edges)
        loss = F.cross_entropy(logits[masks["train"]], y[masks["train"]])
        aux = getattr(model, "aux_loss", None)
        if aux is not None:
            loss = loss + aux
        loss.backward()
        optimizer.step()

        model.eval()
        with torch.no_grad():
            logits = model(x_dict, eval_edges)
        val_loss = float(F.cross_entropy(logits[masks["val"]], y[masks["val"]]))
        history.append(val_loss)
        if val_loss < best["val_loss"]:
            best = {"val_loss": val_loss, "epoch": epoch, "train_loss": loss.item(),
                    **{f"val_{k}": v for k, v in f1_scores(logits[masks["val"]], y[masks["val"]]).items()},
                    **{f"test_{k}": v for k, v in f1_scores(logits[masks["test"]], y[masks["test"]]).items()}}
            wait = 0
        else:
            wait += 1
            if wait >= config.patience:
                break
        bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val_loss:.3f}",
                        test_macro=f"{best.get('test_macro_f1', 0):.3f}")
    best["epochs_run"] = epoch
    best["seconds"] = time.perf_counter() - start
    best["seed"] = seed
    best["parameters"] = sum(p.numel() for p in model.parameters())
    best["val_loss_history"] = [round(v, 4) for v in history]
    return best


def check_config(config: HeteroConfig) -> None:
    from ..datasets.gtn import GTN_DATASETS

    if config.model not in MODELS:
        raise ValueError(f"unknown model '{config.model}' (choose from {sorted(MODELS)})")
    if config.dataset.upper() not in GTN_DATASETS:
        raise ValueError(f"unknown data set '{config.dataset}' (choose from {sorted(GTN_DATASETS)})")
    for name in ("order", "seeds", "epochs", "patience", "hidden", "heads"):
        if getattr(config, name) < 1:
            raise ValueError(f"'{name}' must be at least 1 (got {getattr(config, name)})")
    if config.hidden % config.heads and config.model in ("han", "hgt"):
        raise ValueError(f"'hidden' ({config.hidden}) must be divisible by 'heads' "
                         f"({config.heads}) for {config.model}")


def summarize(config: HeteroConfig, runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    summary = {k: mean_std([r[k] for r in runs])
               for k in ("test_macro_f1", "test_micro_f1", "val_macro_f1", "epochs_run", "seconds")}
    return {"config": config, "summary": summary, "runs": list(runs), "environment": environment()}


def run(config: HeteroConfig, data=None,
        on_seed: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """All seeds of one configuration; ``data`` defaults to the GTN set named
    by ``config.dataset``. ``on_seed`` gets the summary so far after each
    seed (the CLI writes it to ``--out``, so long runs keep what finished)."""
    check_config(config)
    if data is None:
        from ..datasets.gtn import load_gtn

        data = load_gtn(config.dataset)
    runs: List[Dict[str, Any]] = []
    for i in range(config.seeds):
        runs.append(run_once(data, config, config.seed + i))
        if on_seed is not None and i + 1 < config.seeds:
            on_seed({**summarize(config, runs), "partial": True})
    return summarize(config, runs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, HeteroConfig)


def main(args: argparse.Namespace) -> Dict[str, Any]:
    model = getattr(args, "model", None) or HeteroConfig.model
    if model not in MODEL_DEFAULTS:
        raise ValueError(f"unknown model '{model}' (choose from {sorted(MODELS)})")
    config = config_from_args(dataclasses.replace(HeteroConfig(), **MODEL_DEFAULTS[model]), args)
    out = getattr(args, "out", None)
    result = run(config, on_seed=(lambda partial: write_json(out, partial)) if out else None)
    s = result["summary"]
    name = f"{config.model}-{config.order}" + (" (inductive)" if config.inductive else "")
    print(format_table(["model", "data set", "Macro-F1", "Micro-F1", "epochs", "s/run"],
                       [[name, config.dataset, fmt(s["test_macro_f1"]), fmt(s["test_micro_f1"]),
                         f"{s['epochs_run']['mean']:.0f}", f"{s['seconds']['mean']:.1f}"]]))
    return result


__all__ = ["HeteroConfig", "MODELS", "MODEL_DEFAULTS", "run", "run_once", "main",
           "add_arguments", "inductive_edges", "f1_scores"]
