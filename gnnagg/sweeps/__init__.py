"""Which aggregator wins, on which benchmark: a grid of aggregators x
benchmarks x seeds under one budget, one table, one heat map.

>>> import gnnagg
>>> from torch_geometric.nn import GraphSAGE
>>> result = gnnagg.sweep(lambda: GraphSAGE(1433, 64, 2, 7), data,
...                       aggrs=["sum", "mean", "max", "lcm"], seeds=3, out_dir="sweep")
>>> print(result.markdown())

Every cell (task x aggregator x seed) is cached in ``out_dir`` as it
finishes: a rerun skips finished cells and resumes an interrupted one.
"""
from typing import Any, Optional, Sequence, Union

from .grid import CellStore, SweepResult, aggr_label, run_grid
from .tasks import GraphTask, HeteroTask, NodeTask, SetTask, Task, build_with_aggr

__all__ = ["sweep", "run_grid", "SweepResult", "CellStore", "aggr_label", "Task", "NodeTask",
           "GraphTask", "SetTask", "HeteroTask", "build_with_aggr"]


def sweep(model: Any = None, data: Any = None, aggrs: Sequence[Any] = ("sum", "mean", "max"),
          seeds: Union[int, Sequence[int]] = 3, tasks: Optional[Sequence[Task]] = None,
          out_dir: Optional[str] = None, **budget: Any) -> SweepResult:
    """Compare aggregators on your own model and data (or on ``tasks``).

    Args:
        model: a builder. With one argument it gets the aggregator query
            (pass it on to :func:`gnnagg.aggr.resolve`, with the width of
            the messages as ``channels``); with none it returns a PyG model
            whose aggregators are then swapped (:func:`gnnagg.swap_aggregators`).
            ``model(x, edge_index)`` must return class scores.
        data: a PyG ``Data`` with ``x``, ``edge_index``, ``y`` and
            ``train_mask``/``val_mask``/``test_mask`` (node classification),
            or a data set name :func:`gnnagg.datasets.load_citation` knows.
        aggrs: aggregator queries: names (``'sum'``, ``'lcm'``, ...),
            classes, or lists of them (a ``MultiAggregation``).
        seeds: how many seeds (0, 1, ...) or which.
        tasks: benchmarks instead of ``model``/``data`` (see
            :mod:`gnnagg.sweeps.tasks`).
        out_dir: where finished cells are kept (a rerun resumes).
        **budget: :class:`NodeTask` settings for ``model``/``data``
            (``epochs``, ``lr``, ``weight_decay``, ``patience``,
            ``aggr_width``, ``name``).

    Returns:
        :class:`SweepResult` (``.markdown()``, ``.heatmap(path)``,
        ``.summary()``, ``.cells``).
    """
    if tasks is None:
        if model is None or data is None:
            raise ValueError("give model and data, or tasks")
        tasks = [NodeTask(dataset=data, model=model, name=budget.pop("name", "custom"),
                          **budget)]
    elif model is not None or data is not None or budget:
        raise ValueError("give either tasks, or model and data (with a budget), not both")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ValueError("no seeds")
    return run_grid(list(tasks), list(aggrs), seed_list, out_dir)
