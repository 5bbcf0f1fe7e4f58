"""Full-batch node classification on one graph, as the citation runner and
the over-smoothing analysis train it: data preparation, splits, one run
through :func:`gnnagg.train.fit`, resumable series of runs, summaries.

``c`` below is any config with the fields of
:class:`gnnagg.experiments.citation.CitationConfig` that a run reads
(``seed``, ``split``, ``train_per_class``, ``val_per_class``, ``lcc``,
``sparse_features``, ``lr``, ``weight_decay``, ``epochs``, ``select``).
Torch is imported inside the functions, so that importing a runner stays
instant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import common
from .common import mean_std, progress

Record = Dict[str, Any]


@dataclass
class Prepared:
    """A graph ready for training: features (dense and, if wanted, sparse
    CSR), the number of classes, the node ids random splits are drawn
    from (:obj:`None`: all) and the share of non-zero features."""
    data: Any
    num_classes: int
    x_sparse: Any
    candidates: Any
    density: float


def prepare(c, data) -> Prepared:
    """Check the split ``c`` asks for against ``data`` and prepare it."""
    from ..datasets.citation import largest_connected_component
    from ..models.dagnn import to_sparse_csr

    if c.split == "public" and getattr(data, "train_mask", None) is None:
        raise ValueError(f"{c.dataset} has no public split; use --split random")
    x_sparse = to_sparse_csr(data.x) if c.sparse_features else None
    candidates = largest_connected_component(data.edge_index, data.num_nodes) if c.lcc else None
    density = float((data.x != 0).sum()) / max(data.x.numel(), 1)
    return Prepared(data, int(data.y.max()) + 1, x_sparse, candidates, density)


def split_masks(c, prep: Prepared, run: int):
    """``(train, val, test)`` masks of run ``run``: the public split, or a
    random one drawn from ``c.seed + run``."""
    import torch

    from ..datasets.citation import random_split

    data = prep.data
    if c.split == "public":
        return data.train_mask, data.val_mask, data.test_mask
    gen = torch.Generator().manual_seed(c.seed + run)
    return random_split(data.y, prep.num_classes, c.train_per_class, c.val_per_class,
                        nodes=prep.candidates, generator=gen,
                        authors_positions=c.split == "random_authors")


def train_run(c, prep: Prepared, run: int, build: Callable[[int, int], Any],
              sparse_input: bool = False, stopping=None, checkpoint=None,
              extra: Optional[Callable[[Any, Any], Record]] = None) -> Record:
    """One run: seed ``c.seed + run``, ``build(in_channels, num_classes)``
    (a model with ``logits(x, edge_index)``), Adam, :func:`gnnagg.train.fit`
    on the negative log-likelihood of the training nodes, selecting the
    epoch by ``c.select``. Returns the selected epoch's ``val_loss``,
    ``val_acc``, ``test_acc``, the curve, times, and ``extra(model, x)``
    of the selected model."""
    import torch
    import torch.nn.functional as F

    from ..train import fit, seed_everything
    from ..train.tasks import node_classification

    seed_everything(c.seed + run)
    masks = split_masks(c, prep, run)
    x = prep.x_sparse if (sparse_input and prep.x_sparse is not None) else prep.data.x
    # Dropout is cheaper on the non-zeros only, but without dropout a dense
    # product beats a sparse one once a few percent of the entries are set.
    x_eval = x if x.layout == torch.strided or prep.density < 0.05 else prep.data.x
    model = build(prep.data.num_features, prep.num_classes)
    # The fused kernel is 3x faster than the default for these small models.
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr, weight_decay=c.weight_decay,
                                 fused=True)
    loss_fn, evaluate = node_classification(
        prep.data, masks, x, x_eval, loss=F.nll_loss,
        forward=lambda model, feats, edge_index: F.log_softmax(model.logits(feats, edge_index), -1))
    result = fit(model, optimizer, loss_fn, evaluate, epochs=c.epochs, monitor=c.select,
                 stopping=stopping, checkpoint=checkpoint, desc=f"run {run}")
    best = {k: result.best.get(k, float("nan")) for k in ("val_loss", "val_acc", "test_acc")}
    record = {"run": run, "seed": c.seed + run, "epoch": result.best_epoch, **best,
              "epochs": result.epochs, "stopped": result.stopped, "seconds": result.seconds,
              "cpu_seconds": result.cpu_seconds,
              # Per-epoch times are noise on a shared machine; the totals stay.
              "curve": [{k: v for k, v in row.items() if not k.endswith("_seconds")}
                        for row in result.curve]}
    if extra is not None:
        model.eval()
        with torch.no_grad():
            record.update(extra(model, x_eval))
    return record


def summarize(records: List[Record]) -> Dict[str, Any]:
    """Mean and std of the accuracies, times and epochs over runs."""
    epochs = sum(r["epochs"] for r in records)
    return {
        "test_acc": mean_std([r["test_acc"] for r in records]),
        "val_acc": mean_std([r["val_acc"] for r in records]),
        "seconds_per_run": mean_std([r["seconds"] for r in records]),
        # CPU time is what an unshared machine needs (wall time is not, on a busy one).
        "cpu_seconds_per_run": mean_std([r["cpu_seconds"] for r in records]),
        "seconds_per_epoch": sum(r["seconds"] for r in records) / max(epochs, 1),
        "cpu_seconds_per_epoch": sum(r["cpu_seconds"] for r in records) / max(epochs, 1),
        "epochs": mean_std([r["epochs"] for r in records]),
    }


def run_series(store, jobs: List[Tuple[str, Callable[[Any], Record]]], desc: str
               ) -> List[Record]:
    """``jobs``: ``(key, train)`` pairs; ``train(checkpoint)`` runs only for
    keys that ``store`` (a :class:`gnnagg.train.RunStore`) does not hold
    yet (:func:`gnnagg.experiments.common.run_series`). Returns every job's
    record as stored (so a resumed series reads exactly as an uninterrupted one)."""
    jobs_by_key = dict(jobs)
    bar = progress(list(jobs_by_key), desc=desc)

    def show(key: str, record: Record, new: bool) -> None:
        if isinstance(record["test_acc"], float):  # null when no epoch was finite
            bar.set_postfix_str(f"test {record['test_acc'] * 100:.1f}")

    return common.run_series(store, bar, lambda key, checkpoint: jobs_by_key[key](checkpoint),
                             partial=lambda records: {"summary": summarize(records)},
                             stored=True, on_record=show)
