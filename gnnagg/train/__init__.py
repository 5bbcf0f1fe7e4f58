"""The training engine under every gnnagg runner.

* :func:`fit`: the one training loop (full-batch or mini-batch, best-epoch
  selection on a named metric, stopping rules, bf16 autocast, checkpoints
  with exact resumption, data-parallel through :mod:`gnnagg.distributed`).
* :class:`Patience`, :class:`DAGNNStopping`: stopping rules.
* :class:`IndexBatches`: shuffled mini-batches of positions that a resumed
  run sees again.
* :class:`Checkpoint`, :class:`RunStore`: resumable runs and experiments.
* :func:`seed_everything`.
"""
from ..utils import seed_everything
from .checkpoint import Checkpoint, ConfigMismatch, fingerprint, save_atomic
from .engine import DAGNNStopping, FitResult, IndexBatches, Patience, fit
from .runs import RunStore

__all__ = ["fit", "FitResult", "Patience", "DAGNNStopping", "IndexBatches", "Checkpoint",
           "ConfigMismatch", "RunStore", "fingerprint", "save_atomic", "seed_everything"]
