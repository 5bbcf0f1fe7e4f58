"""The loss and evaluation of common tasks, ready for :func:`gnnagg.train.fit`.

Each builder returns what ``fit`` takes (``loss_fn``, ``evaluate`` and,
for mini-batch tasks, ``train_data``), so that a runner, a sweep or a
user's script trains a model on a task in a few lines:

>>> loss_fn, evaluate = node_classification(data)
>>> result = fit(model, optimizer, loss_fn, evaluate, epochs=200, monitor="val_acc")
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import metrics as M

__all__ = ["node_classification", "node_property", "graph_property", "ogb_task_type",
           "set_function", "set_outputs", "sentence_prediction"]


def _mask(data, name: str) -> Tensor:
    mask = getattr(data, name, None)
    if mask is None:
        raise ValueError(f"data has no '{name}' (give train/val/test masks, e.g. from "
                         f"gnnagg.datasets.random_split)")
    return mask


def node_classification(data, masks: Optional[Tuple[Tensor, Tensor, Tensor]] = None,
                        x: Optional[Any] = None, x_eval: Optional[Any] = None,
                        metrics: Sequence[str] = ("acc",),
                        forward: Optional[Callable[..., Any]] = None,
                        loss: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
                        y: Optional[Tensor] = None, graphs: Optional[Tuple[Any, Any, Any]] = None):
    """Full-batch node classification: ``loss`` (cross-entropy) on the
    training nodes; ``evaluate`` gives ``val_loss``, then ``val_<metric>``
    and then ``test_<metric>`` for each of ``metrics`` (names of
    :data:`gnnagg.metrics.METRICS`).

    Args:
        data: a PyG ``Data`` with ``x``, ``edge_index``, ``y`` (and
            ``train_mask``/``val_mask``/``test_mask`` unless ``masks``).
        masks: ``(train, val, test)`` boolean masks. (default: the data's)
        x, x_eval: node features for training and evaluation (e.g. a
            sparse copy, or a heterogeneous graph's ``x_dict``).
            (default: ``data.x``)
        forward: ``forward(model, x, edge_index) -> logits`` (default:
            ``model(x, edge_index)``). Log-probabilities work as well. It
            may return ``(logits, auxiliary loss)``: the auxiliary loss
            (e.g. LATTE's proximity loss) is added to the training loss
            and ignored in evaluation.
        loss: ``loss(scores, labels)`` of the training and validation
            nodes, e.g. ``F.nll_loss`` when ``forward`` gives
            log-probabilities. (default: ``F.cross_entropy``)
        y: the labels. (default: ``data.y``)
        graphs: ``(train, val, test)``: the graph (edge index, or a
            heterogeneous graph's ``edge_index_dict``) that each split's
            nodes are predicted on, for an inductive protocol in which
            training does not see the validation and test nodes. A test
            graph that is the validation graph is not predicted twice. Each
            may be a function of no arguments that returns one (e.g. a
            sampled neighbourhood, :func:`gnnagg.datasets.sample_neighbors`),
            called at every training step or evaluation.
            (default: ``data.edge_index`` for all three)
    """
    train, val, test = masks if masks is not None else (
        _mask(data, "train_mask"), _mask(data, "val_mask"), _mask(data, "test_mask"))
    y = data.y if y is None else y
    train_graph, val_graph, test_graph = graphs if graphs is not None else (data.edge_index,) * 3
    x = data.x if x is None else x
    x_eval = x if x_eval is None else x_eval
    call = forward or (lambda model, feats, ei: model(feats, ei))

    def loss_fn(model, _batch):
        out = call(model, x, train_graph() if callable(train_graph) else train_graph)
        out, extra = out if isinstance(out, tuple) else (out, None)
        value = loss(out[train], y[train])
        return value if extra is None else value + extra

    def scores(model, graph) -> Tensor:
        out = call(model, x_eval, graph() if callable(graph) else graph)
        return (out[0] if isinstance(out, tuple) else out).float()

    def evaluate(model) -> Dict[str, float]:
        out_val = scores(model, val_graph)
        out_test = out_val if test_graph is val_graph else scores(model, test_graph)
        result = {"val_loss": float(loss(out_val[val], y[val]))}
        result.update({f"val_{m}": M.METRICS[m](y[val], out_val[val]) for m in metrics})
        result.update({f"test_{m}": M.METRICS[m](y[test], out_test[test]) for m in metrics})
        return result

    return loss_fn, evaluate


def node_property(x: Tensor, edge_index: Tensor, y: Tensor, split: Dict[str, Tensor], evaluator):
    """OGB node property prediction, full batch, as OGB's examples train
    it (``examples/nodeproppred/arxiv/gnn.py``): ``(loss_fn, evaluate)``.
    The model gives log-probabilities; the loss is the negative
    log-likelihood of the training nodes, in float32 whatever autocast
    says; ``evaluate`` returns ``valid_<metric>`` and ``test_<metric>`` of
    the predicted classes by ``evaluator`` (OGB's ``Evaluator``).

    Args:
        x, edge_index: the graph, on the model's device.
        y: one class per node (a vector), on the same device.
        split: ``{'train', 'valid', 'test'}`` node indices.
    """
    metric = evaluator.eval_metric
    train = split["train"].to(y.device)
    y_cpu = y.cpu().view(-1, 1)

    def loss_fn(model, _batch):
        out = model(x, edge_index)[train].float()
        with torch.autocast(y.device.type, enabled=False):
            return F.nll_loss(out, y[train])

    def evaluate(model) -> Dict[str, float]:
        pred = model(x, edge_index).argmax(dim=-1, keepdim=True).cpu()
        return {f"{s}_{metric}": evaluator.eval(
            {"y_true": y_cpu[split[s]], "y_pred": pred[split[s]]})[metric]
            for s in ("valid", "test")}

    return loss_fn, evaluate


#: Training loss by OGB task type.
_LOSSES: Dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "binary classification": F.binary_cross_entropy_with_logits,
    "regression": F.mse_loss,
}


def ogb_task_type(dataset) -> str:
    task = getattr(dataset, "task_type", None)
    if task not in _LOSSES:
        raise ValueError(f"task type {task!r} is not supported (expected one of "
                         f"{sorted(_LOSSES)})")
    return task


def graph_property(dataset, split: Dict[str, Tensor], evaluator, batch_size: int = 32,
                   eval_batch_size: int = 256, seed: int = 0, ctx=None,
                   forward: Optional[Callable[[Any, Any], Tensor]] = None):
    """Graph property prediction on an OGB-style in-memory data set:
    ``(train_data, loss_fn, evaluate)`` for :func:`gnnagg.train.fit`.

    The loss is OGB's (binary cross-entropy on the labelled targets of
    classification sets, mean squared error on regression sets); ``evaluate``
    returns ``valid_<metric>`` and ``test_<metric>`` from ``evaluator`` (OGB's
    own ``Evaluator`` for OGB sets). With a data-parallel ``ctx`` each rank
    trains on its share and evaluation is sharded and gathered, so the
    metric equals a single-process evaluation.

    Args:
        dataset: an in-memory data set with ``task_type`` and ``num_tasks``.
        split: ``{'train', 'valid', 'test'}`` graph indices.
        evaluator: has ``eval({'y_true', 'y_pred'})`` and ``eval_metric``.
        forward: ``forward(model, batch) -> (num_graphs, num_tasks)``
            (default: ``model(x, edge_index, edge_attr, batch, num_graphs)``).
    """
    from .. import distributed as D
    from ..datasets.ogb import FastGraphLoader

    ctx = ctx if ctx is not None else D.Context()
    loss_of = _LOSSES[ogb_task_type(dataset)]
    metric = evaluator.eval_metric
    if batch_size % ctx.world_size:
        raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of "
                         f"processes ({ctx.world_size})")
    sampler = D.train_sampler(split["train"].numel(), ctx, seed=seed)
    loader = FastGraphLoader(dataset, split["train"], batch_size // ctx.world_size,
                             sampler=sampler)
    device = ctx.device

    def call(model, batch) -> Tensor:
        if forward is not None:
            return forward(model, batch)
        return model(batch.x.to(device), batch.edge_index.to(device),
                     batch.edge_attr.to(device), batch.batch.to(device), batch.num_graphs)

    def loss_fn(model, batch):
        out = call(model, batch).float()
        y = batch.y.to(device).float().view(out.shape)
        labelled = y == y  # NaN marks a missing label in multi-task sets
        if not bool(labelled.any()):
            raise ValueError("a training batch has no labelled target")
        return loss_of(out[labelled], y[labelled]), batch.num_graphs

    def predict(model, indices: Tensor) -> Tensor:
        positions = D.eval_shard(indices.numel(), ctx)
        parts = [call(D.unwrap(model), b).float().cpu() for b in
                 FastGraphLoader(dataset, indices[positions], batch_size=eval_batch_size)]
        pred = torch.cat(parts) if parts else torch.zeros(0, dataset.num_tasks)
        return D.gather_predictions(pred, positions, indices.numel(), ctx)

    y_all = dataset._data.y

    def evaluate(model) -> Dict[str, float]:
        out = {}
        for name in ("valid", "test"):
            pred = predict(model, split[name])
            y = y_all[split[name]].view(pred.shape)
            out[f"{name}_{metric}"] = float(evaluator.eval({"y_true": y, "y_pred": pred})[metric])
        return out

    return loader, loss_fn, evaluate


def set_function(train, val, num_classes: int, target: str = "bits", encoding: str = "bits",
                 batch_size: int = 128, seed: int = 0):
    """A set function to learn from :class:`gnnagg.datasets.synthetic.SetBatch`
    sets with a :class:`gnnagg.models.SetModel`: ``(train_data, loss_fn,
    evaluate, accuracy)``, where ``evaluate`` gives ``val_acc`` and
    ``accuracy(model, sets)`` scores other sets (e.g. larger test sets).

    Args:
        train, val: the training and validation sets.
        num_classes: how many labels there are.
        target: ``'bits'`` (one logit per bit of the label, right only when
            every bit is, as PyG's example for the LCM paper) or ``'class'``
            (a softmax over the labels).
        encoding: ``'bits'`` (the model reads each element's bits) or
            ``'embedding'`` (its value, for a learned embedding).
    """
    import math

    from ..datasets.synthetic import int_to_bits
    from .engine import IndexBatches

    if target not in ("bits", "class"):
        raise ValueError(f"target must be 'bits' or 'class' (got {target!r})")
    if encoding not in ("bits", "embedding"):
        raise ValueError(f"encoding must be 'bits' or 'embedding' (got {encoding!r})")
    nbits = max(1, math.ceil(math.log2(num_classes)))
    weights = 1 << torch.arange(nbits - 1, -1, -1)

    def forward(model, sets) -> Tensor:
        x = sets.bit_features() if encoding == "bits" else sets.values
        return model(x, sets.index, dim_size=sets.num_sets)

    def loss_of(out: Tensor, y: Tensor) -> Tensor:
        if target == "class":
            return F.cross_entropy(out, y)
        return F.binary_cross_entropy_with_logits(out, int_to_bits(y, nbits))

    def predict(out: Tensor) -> Tensor:
        return out.argmax(-1) if target == "class" else ((out > 0).long() * weights).sum(-1)

    def loss_fn(model, positions):
        sets = train.select(positions)
        return loss_of(forward(model, sets), sets.y), sets.num_sets

    def accuracy(model, sets) -> float:
        parts = sets if isinstance(sets, list) else [sets]  # (a SetBatch is a tuple)
        pred = torch.cat([predict(forward(model, s)) for s in parts])
        return M.accuracy(torch.cat([s.y for s in parts]), pred)

    def evaluate(model) -> Dict[str, float]:
        return {"val_acc": accuracy(model, val)}

    batches = IndexBatches(train.num_sets, batch_size, shuffle=True, seed=seed)
    return batches, loss_fn, evaluate, accuracy


def set_outputs(num_classes: int, target: str = "bits") -> int:
    """The model outputs :func:`set_function` expects for ``num_classes``."""
    import math

    return num_classes if target == "class" else max(1, math.ceil(math.log2(num_classes)))


def sentence_prediction(train, evaluation: Dict[str, Any], metrics: Sequence[str],
                        num_outputs: int, regression: bool = False, class_weights: bool = False,
                        batch_size: int = 32, seed: int = 0, eval_batch_size: int = 256):
    """Sentence (or sentence-pair) classification or regression on encoded
    texts (:class:`gnnagg.text.LabelledTexts`), e.g. GLUE with a
    :class:`gnnagg.models.SentenceClassifier`: ``(train_data, loss_fn,
    evaluate)``. The loss is the cross-entropy (regression: the mean
    squared error of the one output); ``evaluate`` gives
    ``<split>_<metric>`` for each split of ``evaluation`` (``{name:
    texts}``, in order) and each of ``metrics`` (names of
    :data:`gnnagg.metrics.METRICS`).

    Args:
        num_outputs: the model's outputs (classes; 1 for regression).
        class_weights: weight the loss by inverse training class frequency.
    """
    from .engine import IndexBatches

    weight = None
    if class_weights:
        counts = torch.bincount(train.y, minlength=num_outputs).clamp_min(1).float()
        weight = len(train) / (num_outputs * counts)

    def loss_fn(model, idx):
        out, y = model(*train.inputs(idx)), train.y[idx]
        loss = F.mse_loss(out.squeeze(-1), y.float()) if regression else \
            F.cross_entropy(out, y, weight=weight)
        return loss, idx.numel()

    def evaluate(model) -> Dict[str, float]:
        row = {}
        for split, data in evaluation.items():
            out = torch.cat([model(*data.inputs(i))
                             for i in torch.arange(len(data)).split(eval_batch_size)])
            pred = out.squeeze(-1) if regression else out.argmax(-1)
            row.update({f"{split}_{m}": M.METRICS[m](data.y, pred) for m in metrics})
        return row

    return IndexBatches(len(train), batch_size, shuffle=True, seed=seed), loss_fn, evaluate
