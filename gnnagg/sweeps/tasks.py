"""The benchmarks of a sweep: data, a model that takes the aggregator under
test, and a training budget. Each is a :class:`Task`; write your own by
subclassing it (``settings`` and ``run``)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from ..train import Patience, fit, seed_everything
from ..train.tasks import graph_property, node_classification

__all__ = ["Task", "NodeTask", "GraphTask", "SetTask", "HeteroTask", "build_with_aggr"]


class Task:
    """A benchmark: ``run(aggr, seed, checkpoint)`` trains one model with
    the aggregator ``aggr`` (any query :func:`gnnagg.aggr.resolve` takes) and
    returns the cell's record; ``settings()`` lists what else the result
    depends on (a changed budget is a new cell, never a stale one)."""

    name: str = "task"
    metric: str = "acc"
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        # The built-in tasks are dataclasses: name them from their fields.
        if not self.name:
            self.name = self.default_name()

    def default_name(self) -> str:
        return type(self).__name__

    def settings(self) -> Dict[str, Any]:
        """What a cell's result depends on besides the aggregator and seed
        (default: the dataclass fields not starting with ``_``)."""
        import dataclasses

        if not dataclasses.is_dataclass(self):
            raise NotImplementedError(f"{type(self).__name__}.settings(): return the budget "
                                      f"and options a cell's result depends on")
        return _fields(self)

    def run(self, aggr: Any, seed: int, checkpoint=None) -> Dict[str, Any]:
        raise NotImplementedError


def _fields(task) -> Dict[str, Any]:
    # dataclasses.asdict would deep-copy the cached data sets.
    return {f.name: getattr(task, f.name) for f in fields(task) if not f.name.startswith("_")}


def _record(result, test_key: str, val_key: str, model: torch.nn.Module) -> Dict[str, Any]:
    train_s = [row["train_seconds"] for row in result.curve]
    return {"test": result.best.get(test_key, float("nan")),
            "val": result.best.get(val_key, float("nan")),
            "best_epoch": result.best_epoch, "epochs": result.epochs,
            "stopped": result.stopped,
            "seconds_per_epoch": sum(train_s) / max(len(train_s), 1),
            "parameters": sum(p.numel() for p in model.parameters()),
            "curve": result.curve}


def build_with_aggr(model_fn: Callable, aggr: Any, example: Optional[Tuple] = None,
                    width: Optional[int] = None) -> torch.nn.Module:
    """A model with the aggregator ``aggr``: ``model_fn(aggr)`` when it takes
    an argument, else ``model_fn()`` with its aggregators swapped
    (:func:`gnnagg.swap_aggregators`; ``example`` measures the message
    widths, ``width`` projects wide messages)."""
    params = [p for p in inspect.signature(model_fn).parameters.values()
              if p.default is inspect.Parameter.empty
              and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if params:
        return model_fn(aggr)
    from ..swap import swap_aggregators

    model = model_fn()
    swap_aggregators(model, aggr, example=example, width=width)
    return model


# Node classification ########################################################

#: Node models of :mod:`gnnagg.models` by short name.
NODE_MODELS = {"sage": "GraphSAGE", "gin": "GIN", "gcn": "GCN"}


@dataclass
class NodeTask(Task):
    """Full-batch node classification (Planetoid, Coauthor, Amazon, ...).

    Args:
        dataset: a data set name for :func:`gnnagg.datasets.load_citation`,
            a ``Data`` with masks, or a callable returning one.
        model: ``'sage'``, ``'gin'``, ``'gcn'`` (:mod:`gnnagg.models`), or a
            builder (see :func:`build_with_aggr`; a one-argument builder
            gets the aggregator, a zero-argument one gets swapped).
        aggr_width: learned aggregators on wider messages work on a
            projection to this width (:class:`gnnagg.aggr.Projected`).
        split_per_class: for data without masks, a new random split per
            seed with this many (training, validation) nodes per class.
        input_projection: map the raw features linearly to this width
            before the model (``'sage'``/``'gin'``/``'gcn'`` only), so that
            every aggregator works on that width rather than on thousands
            of bag-of-words features (the quick preset's choice, for time).
    """
    dataset: Any = "Cora"
    model: Any = "sage"
    name: str = ""
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.5
    epochs: int = 200
    lr: float = 0.01
    weight_decay: float = 5e-4
    patience: int = 50
    aggr_width: Optional[int] = 64
    split_per_class: Tuple[int, int] = (20, 30)
    input_projection: Optional[int] = None
    metric: str = "acc"
    higher_is_better: bool = True
    _data: Any = field(default=None, repr=False, compare=False)

    def default_name(self) -> str:
        ds = self.dataset if isinstance(self.dataset, str) else "data"
        md = self.model if isinstance(self.model, str) else "model"
        return f"{ds}/{md}"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.model, str) and self.model not in NODE_MODELS:
            raise ValueError(f"unknown node model '{self.model}' (choose from "
                             f"{sorted(NODE_MODELS)} or pass a builder)")

    def settings(self) -> Dict[str, Any]:
        out = _fields(self)
        out["dataset"] = _describe(self.dataset)
        out["model"] = _describe(self.model)
        return out

    def data(self):
        if self._data is None:
            if isinstance(self.dataset, str):
                from ..datasets.citation import load_citation

                self._data = load_citation(self.dataset)
            elif hasattr(self.dataset, "edge_index"):  # a PyG Data (which is callable too)
                self._data = self.dataset
            elif callable(self.dataset):
                self._data = self.dataset()
            else:
                raise TypeError(f"dataset must be a name, a PyG Data or a callable returning "
                                f"one (got {type(self.dataset).__name__})")
        return self._data

    def masks(self, seed: int):
        data = self.data()
        if getattr(data, "train_mask", None) is not None:
            return data.train_mask, data.val_mask, data.test_mask
        from ..datasets.citation import random_split

        g = torch.Generator().manual_seed(seed)
        return random_split(data.y, int(data.y.max()) + 1, *self.split_per_class, generator=g)

    def build(self, aggr: Any) -> torch.nn.Module:
        data = self.data()
        num_classes = int(data.y.max()) + 1
        if isinstance(self.model, str):
            from .. import models

            cls = getattr(models, NODE_MODELS[self.model])
            width = self.input_projection or data.num_features
            model = cls(width, self.hidden, num_classes, num_layers=self.layers,
                        dropout=self.dropout, aggr=aggr, aggr_width=self.aggr_width)
            return _ProjectedInput(data.num_features, width, model) if self.input_projection \
                else model
        return build_with_aggr(self.model, aggr, (data.x, data.edge_index), self.aggr_width)

    def run(self, aggr: Any, seed: int, checkpoint=None) -> Dict[str, Any]:
        seed_everything(seed)
        model = self.build(aggr)
        loss_fn, evaluate = node_classification(self.data(), self.masks(seed))
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr,
                                     weight_decay=self.weight_decay)
        result = fit(model, optimizer, loss_fn, evaluate, epochs=self.epochs, monitor="val_acc",
                     stopping=Patience(self.patience), checkpoint=checkpoint,
                     desc=f"{self.name} {_label(aggr)} s{seed}")
        return _record(result, "test_acc", "val_acc", model)


class _ProjectedInput(torch.nn.Module):
    """``model(lin(x), edge_index)``: a learned linear map of the raw node
    features to ``width`` channels before the message passing."""

    def __init__(self, in_channels: int, width: int, model: torch.nn.Module) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(in_channels, width)
        self.model = model

    def forward(self, x, edge_index, *args, **kwargs):
        return self.model(self.lin(x), edge_index, *args, **kwargs)


def _describe(obj: Any) -> str:
    """A stable description of a data set or model builder for a cell's
    fingerprint: names as they are, a ``Data`` by its sizes and a hash of its
    contents, a builder by its qualified name (give tasks distinct names when
    two builders share one, e.g. two lambdas)."""
    if isinstance(obj, str):
        return obj
    if hasattr(obj, "edge_index"):
        import hashlib

        h = hashlib.sha256()
        for key in ("x", "edge_index", "y"):
            value = getattr(obj, key, None)
            if isinstance(value, torch.Tensor):
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return (f"Data(nodes={obj.num_nodes}, edges={obj.num_edges}, "
                f"features={obj.num_features}, sha256={h.hexdigest()[:16]})")
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _label(aggr: Any) -> str:
    from .grid import aggr_label

    return aggr_label(aggr)


# Graph property prediction (OGB) ############################################

@dataclass
class GraphTask(Task):
    """OGB graph property prediction with OGB's GIN (or GCN) baseline
    model (:class:`gnnagg.models.OGBGraphModel`) and OGB's evaluator.

    Args:
        dataset: an ``ogbg-*`` name.
        subset: train on the first N training graphs only, for quick presets.
        eval_subset: evaluate on the first N validation and test graphs only
            (too few may hold no positive graph, which ROC-AUC needs).
    """
    dataset: str = "ogbg-molesol"
    model: str = "gin"
    name: str = ""
    hidden: int = 64
    layers: int = 3
    dropout: float = 0.5
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 0
    subset: Optional[int] = None
    eval_subset: Optional[int] = None
    metric: str = ""
    higher_is_better: bool = True
    _cache: Any = field(default=None, repr=False, compare=False)

    def default_name(self) -> str:
        return f"{self.dataset}/{self.model}" + (f"/{self.subset}" if self.subset else "")

    def __post_init__(self) -> None:
        from ..metrics import evaluator_for

        super().__post_init__()
        self.metric = evaluator_for(self.dataset).eval_metric
        self.higher_is_better = self.metric not in ("rmse", "mae")

    def load(self):
        if self._cache is None:
            from ..datasets.ogb import load_graph_dataset
            from ..metrics import evaluator_for

            dataset = load_graph_dataset(self.dataset)
            split = {k: torch.as_tensor(v, dtype=torch.long)
                     for k, v in dataset.get_idx_split().items()}
            if self.subset:
                split["train"] = split["train"][:self.subset]
            if self.eval_subset:
                split = {k: v if k == "train" else v[:self.eval_subset] for k, v in split.items()}
            self._cache = (dataset, split, evaluator_for(self.dataset))
        return self._cache

    def run(self, aggr: Any, seed: int, checkpoint=None) -> Dict[str, Any]:
        from ..models.ogb import GRAPH_MODELS, OGBGraphModel

        dataset, split, evaluator = self.load()
        seed_everything(seed)
        model = OGBGraphModel(dataset.num_tasks, aggr=aggr, num_layers=self.layers,
                              hidden_channels=self.hidden, dropout=self.dropout,
                              **GRAPH_MODELS[self.model])
        train_data, loss_fn, evaluate = graph_property(dataset, split, evaluator,
                                                       self.batch_size, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        result = fit(model, optimizer, loss_fn, evaluate, epochs=self.epochs,
                     train_data=train_data, monitor=f"valid_{self.metric}",
                     stopping=Patience(self.patience) if self.patience else None,
                     checkpoint=checkpoint, desc=f"{self.name} {_label(aggr)} s{seed}")
        return _record(result, f"test_{self.metric}", f"valid_{self.metric}", model)


# Synthetic sets ##############################################################

@dataclass
class SetTask(Task):
    """A synthetic multiset task (:mod:`gnnagg.datasets.synthetic`): train on
    sets of ``train_sizes``, select on validation sets of ``val_size``, and
    report the accuracy on sets of ``test_size`` (extrapolation)."""
    task: str = "parity"
    name: str = ""
    train_sizes: Tuple[int, int] = (2, 16)
    val_size: int = 32
    test_size: int = 512
    train_sets: int = 4096
    val_sets: int = 256
    test_sets: int = 256
    bits: int = 8
    channels: int = 64
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    data_seed: int = 0
    metric: str = "acc"
    higher_is_better: bool = True
    _data: Any = field(default=None, repr=False, compare=False)

    def default_name(self) -> str:
        return f"{self.task}@{self.test_size}"

    def data(self):
        if self._data is None:
            from ..datasets.synthetic import generate_sets

            s = self.data_seed * 1000
            self._data = (
                generate_sets(self.task, self.train_sets, tuple(self.train_sizes), self.bits, s + 1),
                generate_sets(self.task, self.val_sets, self.val_size, self.bits, s + 2),
                generate_sets(self.task, self.test_sets, self.test_size, self.bits, s + 3))
        return self._data

    def run(self, aggr: Any, seed: int, checkpoint=None) -> Dict[str, Any]:
        from ..datasets.synthetic import get_task
        from ..models.sets import SetModel
        from ..train.tasks import set_function, set_outputs

        train, val, test = self.data()
        classes = get_task(self.task).num_classes(self.bits)
        seed_everything(seed)
        model = SetModel(self.bits, self.channels, set_outputs(classes), aggr=aggr)
        batches, loss_fn, evaluate, accuracy = set_function(train, val, classes,
                                                            batch_size=self.batch_size, seed=seed)

        def evaluate_with_test(m):
            return {**evaluate(m), "test_acc": accuracy(m, test)}

        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        result = fit(model, optimizer, loss_fn, evaluate_with_test, epochs=self.epochs,
                     train_data=batches, monitor="val_acc", checkpoint=checkpoint,
                     desc=f"{self.name} {_label(aggr)} s{seed}")
        return _record(result, "test_acc", "val_acc", model)


# Heterogeneous graphs ########################################################

@dataclass
class HeteroTask(Task):
    """Node classification on a GTN heterogeneous graph (ACM, DBLP, IMDB)
    with LATTE (:class:`gnnagg.models.LATTE`), the aggregator used inside
    every relation; Macro-F1 on the test nodes."""
    dataset: str = "ACM"
    name: str = ""
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.4
    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 30
    metric: str = "macro_f1"
    higher_is_better: bool = True
    _data: Any = field(default=None, repr=False, compare=False)

    def default_name(self) -> str:
        return f"{self.dataset}/latte-{self.layers}"

    def run(self, aggr: Any, seed: int, checkpoint=None) -> Dict[str, Any]:
        from ..datasets.gtn import load_gtn
        from ..models.latte import LATTE

        if self._data is None:
            self._data = load_gtn(self.dataset)
        data = self._data
        target = data.target_node_type
        store = data[target]
        masks = tuple(store[f"{s}_mask"] for s in ("train", "val", "test"))
        seed_everything(seed)
        model = LATTE({t: x.size(1) for t, x in data.x_dict.items()}, data.num_classes,
                      data.metadata(), target, hidden_channels=self.hidden,
                      num_layers=self.layers, aggr=aggr, dropout=self.dropout)
        edges = data.edge_index_dict
        loss_fn, evaluate = node_classification(data, masks, x=data.x_dict, y=store.y,
                                                metrics=("macro_f1",),
                                                graphs=(edges, edges, edges))
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr,
                                     weight_decay=self.weight_decay)
        result = fit(model, optimizer, loss_fn, evaluate, epochs=self.epochs,
                     monitor="val_loss", stopping=Patience(self.patience),
                     checkpoint=checkpoint, desc=f"{self.name} {_label(aggr)} s{seed}")
        return _record(result, "test_macro_f1", "val_macro_f1", model)
