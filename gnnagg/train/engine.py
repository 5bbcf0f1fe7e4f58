r"""One training loop for every model and runner in gnnagg.

:func:`fit` trains a model for up to ``epochs`` epochs. Each epoch it
takes one optimiser step per batch of ``train_data`` (or one full-batch
step when it is :obj:`None`) on ``loss_fn(model, batch)``, then calls
``evaluate(model)`` for a dict of metrics, records the row in the curve,
keeps the weights of the best epoch by the ``monitor``\ ed metric, and asks
the ``stopping`` rule whether to go on. With a :class:`Checkpoint` the
state after every epoch (model, optimiser, scheduler, random states, curve,
best weights) is written atomically and a later call resumes from it, to
the same numbers as an uninterrupted run.

Example (full-batch node classification)::

    def loss_fn(model, _):
        out = model(data.x, data.edge_index)
        return F.cross_entropy(out[data.train_mask], data.y[data.train_mask])

    def evaluate(model):
        out = model(data.x, data.edge_index)
        return {"val_loss": F.cross_entropy(out[val], y[val]).item(),
                "val_acc": accuracy(y[val], out[val]), "test_acc": accuracy(y[test], out[test])}

    result = fit(model, optimizer, loss_fn, evaluate, epochs=200, monitor="val_acc",
                 stopping=Patience(20))
    result.best["test_acc"]   # the test accuracy at the selected epoch
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch
from torch import Tensor

from ..metrics import higher_is_better
from ..utils import progress, quiet_warnings
from .checkpoint import Checkpoint, rng_state, set_rng_state

__all__ = ["fit", "FitResult", "Patience", "DAGNNStopping", "IndexBatches"]

Row = Dict[str, float]


# Stopping rules ##############################################################

class Patience:
    """Stop once the monitored value has not improved for ``patience``
    epochs (``patience=0`` never stops)."""

    def __init__(self, patience: int) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0 (got {patience})")
        self.patience = patience

    def __call__(self, curve: List[Row], monitor: str, higher: bool, best_epoch: int) -> bool:
        return self.patience > 0 and len(curve) - best_epoch >= self.patience

    def __repr__(self) -> str:
        return f"Patience({self.patience})"


class DAGNNStopping:
    """The DAGNN authors' rule (Liu, Gao & Ji, KDD 2020): after half of
    ``epochs``, stop once the latest ``key`` (the validation loss) exceeds
    the mean of the ``patience`` values before it."""

    def __init__(self, patience: int, epochs: int, key: str = "val_loss") -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0 (got {patience})")
        self.patience, self.epochs, self.key = patience, epochs, key

    def __call__(self, curve: List[Row], monitor: str, higher: bool, best_epoch: int) -> bool:
        values = [row[self.key] for row in curve]
        if self.patience <= 0 or len(values) <= self.epochs // 2:
            return False
        window = values[-(self.patience + 1):-1]
        return values[-1] > sum(window) / len(window)

    def __repr__(self) -> str:
        return f"DAGNNStopping(patience={self.patience}, epochs={self.epochs}, key='{self.key}')"


# Data ########################################################################

class IndexBatches:
    """Mini-batches of positions ``0 .. n - 1``: a new random order every
    epoch (drawn from ``seed`` and the epoch number, so that a resumed run
    sees the same batches), or in order when ``shuffle=False``."""

    def __init__(self, n: int, batch_size: int, shuffle: bool = True, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        return iter(order.split(self.batch_size))


# Result ######################################################################

@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        curve: one row per epoch: ``epoch`` (from 1), ``loss`` (the training
            loss, mean over examples), the metrics of ``evaluate`` and
            ``train_seconds``/``eval_seconds``.
        best_epoch: the selected epoch (0 when none was evaluated).
        best: the curve's row at ``best_epoch``.
        monitor: the metric the epoch was selected on.
        stopped: ``'max_epochs'``, ``'early_stopping'`` or ``'non_finite_loss'``.
        seconds / cpu_seconds: wall and process time of training and
            evaluation, over all sessions of a resumed run.
    """
    curve: List[Row]
    best_epoch: int
    best: Row
    monitor: str
    stopped: str
    seconds: float
    cpu_seconds: float
    resumed_from: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.curve)

    def as_dict(self) -> Dict[str, Any]:
        return {"best_epoch": self.best_epoch, "best": self.best, "monitor": self.monitor,
                "epochs": self.epochs, "stopped": self.stopped, "seconds": self.seconds,
                "cpu_seconds": self.cpu_seconds, "curve": self.curve}


# The loop ####################################################################

def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _device_type(model: torch.nn.Module, ctx) -> str:
    if ctx is not None:
        return ctx.device.type
    p = next(model.parameters(), None)
    return p.device.type if p is not None else "cpu"


def _set_epoch(data, epoch: int) -> None:
    for obj in (data, getattr(data, "sampler", None)):
        fn = getattr(obj, "set_epoch", None)
        if callable(fn):
            fn(epoch)


def _loss_and_count(out) -> Tuple[Tensor, int]:
    if isinstance(out, tuple):
        loss, count = out
        return loss, int(count)
    return out, 1


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.nn.Module, Any], Union[Tensor, Tuple[Tensor, int]]],
        evaluate: Callable[[torch.nn.Module], Dict[str, float]], *, epochs: int,
        train_data: Optional[Iterable] = None, monitor: str = "val_loss",
        higher: Optional[bool] = None, stopping: Optional[Callable] = None,
        scheduler=None, scheduler_per_step: bool = False, amp: bool = False,
        amp_dtype: torch.dtype = torch.bfloat16, regularization: float = 1.0,
        clip_grad_norm: Optional[float] = None, checkpoint: Optional[Checkpoint] = None,
        ctx=None, restore_best: bool = True, desc: str = "training", leave: bool = False,
        on_epoch: Optional[Callable[[Row], None]] = None) -> FitResult:
    """Train ``model``; return the curve and the selected epoch.

    Args:
        model: the model (possibly wrapped in ``DistributedDataParallel``).
        optimizer: its optimiser.
        loss_fn: ``loss_fn(model, batch)`` returns the training loss of a
            batch, or ``(loss, number of examples)`` to weight the epoch's
            mean; called in training mode (under autocast with ``amp``).
        evaluate: ``evaluate(model)`` returns ``{name: value}`` (e.g.
            ``val_loss``, ``val_acc``, ``test_acc``); called in evaluation
            mode without gradients after every epoch.
        epochs: the most epochs to train (in all, counting resumed ones).
        train_data: an iterable of batches, iterated once per epoch (its
            ``set_epoch``, or its sampler's, is called first); :obj:`None`
            means one full-batch step per epoch with ``batch=None``.
        monitor: the ``evaluate`` key that selects the best epoch.
        higher: whether larger is better (default: from the name, see
            :func:`gnnagg.metrics.higher_is_better`).
        stopping: ``stopping(curve, monitor, higher, best_epoch) -> bool``,
            e.g. :class:`Patience` or :class:`DAGNNStopping`; :obj:`None`
            trains all epochs.
        scheduler: a learning-rate scheduler, stepped every epoch (or every
            optimiser step with ``scheduler_per_step``).
        amp: bfloat16 autocast for training and evaluation.
        regularization: weight of :func:`gnnagg.aggr.regularization_loss`
            (the aggregators' own regularisers) added to every loss.
        clip_grad_norm: clip the gradient norm to this value.
        checkpoint: save after every epoch and resume from a saved state.
        ctx: a :class:`gnnagg.distributed.Context`: buffers are synchronised
            after each epoch, only rank 0 writes checkpoints and shows
            progress.
        restore_best: load the best epoch's weights into the model at the end.
        desc, leave: the progress bar's label and whether it stays.
        on_epoch: called with each new curve row.
    """
    from ..aggr.base import regularization_loss

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int (got {epochs!r})")
    higher = higher_is_better(monitor) if higher is None else higher
    distributed = ctx is not None and getattr(ctx, "distributed", False)
    is_main = ctx is None or ctx.is_main
    net = _unwrap(model)
    device_type = _device_type(net, ctx)

    curve: List[Row] = []
    best_epoch, best_state = 0, None
    stopped = ""
    seconds = cpu_seconds = 0.0
    resumed_from = 0
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        curve, best_epoch, best_state = state["curve"], state["best_epoch"], state["best_state"]
        stopped, seconds, cpu_seconds = state["stopped"], state["seconds"], state["cpu_seconds"]
        resumed_from = len(curve)
        if stopped == "max_epochs" and len(curve) < epochs:
            stopped = ""  # more epochs were asked for since

    def better(value: float) -> bool:
        if not math.isfinite(value):
            return False
        if best_epoch == 0:
            return True
        old = curve[best_epoch - 1][monitor]
        return value > old if higher else value < old

    bar = progress(range(len(curve), epochs), desc=desc, initial=len(curve), total=epochs,
                   leave=leave, **({} if is_main else {"disable": True}))
    with quiet_warnings():
        for epoch in bar:
            if stopped:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            model.train()
            _set_epoch(train_data, epoch)
            total, count = 0.0, 0
            for batch in ([None] if train_data is None else train_data):
                with torch.autocast(device_type, dtype=amp_dtype, enabled=amp):
                    loss, n = _loss_and_count(loss_fn(model, batch))
                if regularization:
                    loss = loss + regularization * regularization_loss(net)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), clip_grad_norm)
                optimizer.step()
                if scheduler is not None and scheduler_per_step:
                    scheduler.step()
                total += float(loss.detach()) * n
                count += n
            if scheduler is not None and not scheduler_per_step:
                scheduler.step()
            if distributed:
                from ..distributed import sync_buffers

                sync_buffers(model, ctx)
            train_s = time.perf_counter() - t0
            row: Row = {"epoch": epoch + 1, "loss": total / max(count, 1)}
            if not math.isfinite(row["loss"]):
                stopped = "non_finite_loss"
                row["train_seconds"] = train_s
            else:
                model.eval()
                with torch.no_grad(), torch.autocast(device_type, dtype=amp_dtype, enabled=amp):
                    metrics = evaluate(model)
                if monitor not in metrics:
                    raise KeyError(f"evaluate() returned {sorted(metrics)}, without the "
                                   f"monitored '{monitor}'")
                row.update({k: float(v) for k, v in metrics.items()})
                row["train_seconds"] = train_s
                row["eval_seconds"] = time.perf_counter() - t0 - train_s
            seconds += time.perf_counter() - t0
            cpu_seconds += time.process_time() - c0
            curve.append(row)
            if monitor in row and better(row[monitor]):
                best_epoch = len(curve)
                best_state = copy.deepcopy(net.state_dict())
            if not stopped and stopping is not None and \
                    stopping(curve, monitor, higher, best_epoch):
                stopped = "early_stopping"
            if not stopped and len(curve) >= epochs:
                stopped = "max_epochs"
            if checkpoint is not None and is_main:
                checkpoint.save({
                    "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": rng_state(), "curve": curve, "best_epoch": best_epoch,
                    "best_state": best_state, "stopped": stopped, "seconds": seconds,
                    "cpu_seconds": cpu_seconds}, force=bool(stopped))
            if distributed:
                from ..distributed import barrier

                barrier(ctx)
            if is_main:
                post = {"loss": f"{row['loss']:.4f}"}
                if monitor in row:
                    post[monitor] = f"{row[monitor]:.4f}"
                bar.set_postfix(post, refresh=False)
            if on_epoch is not None:
                on_epoch(row)
    bar.close()
    if not stopped:
        stopped = "max_epochs"
    if restore_best and best_state is not None:
        net.load_state_dict(best_state)
    best = dict(curve[best_epoch - 1]) if best_epoch else {}
    return FitResult(curve, best_epoch, best, monitor, stopped, seconds, cpu_seconds,
                     resumed_from)
