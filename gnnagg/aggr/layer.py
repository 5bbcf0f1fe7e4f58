"""A fresh aggregator for one layer: the rule every model follows."""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from torch_geometric.nn.aggr import Aggregation

from .projected import Projected
from .resolve import needs_channels, resolve

__all__ = ["layer_aggregator", "aggregated_width"]


def aggregated_width(aggr: Aggregation, channels: int) -> int:
    """The width ``aggr`` outputs for ``channels``-wide messages: a
    ``MultiAggregation`` says it (``get_out_channels``: the sum of its
    members' widths when it concatenates), other aggregators keep the width
    unless they were built with another ``out_channels``."""
    get = getattr(aggr, "get_out_channels", None)
    if callable(get):
        return int(get(channels))
    out = getattr(aggr, "out_channels", None)
    return out if isinstance(out, int) and out > 0 else channels


def _one(query: Any, channels: int, width: Optional[int], kwargs: Dict[str, Any]) -> Aggregation:
    if isinstance(query, Aggregation):
        if kwargs:
            raise TypeError("aggr_kwargs given with an aggregation module, which is already built")
        return copy.deepcopy(query)  # layers must not share one module's weights
    if width is not None and channels > width and needs_channels(query):
        return Projected(query, channels, width, **kwargs)
    return resolve(query, channels=channels, **kwargs)


def layer_aggregator(aggr: Any, channels: int, aggr_kwargs: Optional[Dict[str, Any]] = None,
                     width: Optional[int] = None, keep_width: bool = False
                     ) -> Optional[Aggregation]:
    """A fresh aggregation module for one layer whose messages are
    ``channels`` wide (see :func:`gnnagg.aggr.message_channels`).

    Args:
        aggr: anything :func:`gnnagg.aggr.resolve` accepts; a module is
            deep-copied (each layer learns its own weights); a list gives a
            ``MultiAggregation`` (``mode``/``mode_kwargs``/``aggrs_kwargs`` in
            ``aggr_kwargs``).
        channels: the width of the messages.
        aggr_kwargs: further arguments of the aggregator.
        width: aggregators whose size grows with the width (those
            :func:`needs_channels` names) work on a projection to this many
            channels when the messages are wider (:class:`Projected`);
            :obj:`None` never projects.
        keep_width: the layer needs a ``channels``-wide aggregate (it adds
            it to a ``channels``-wide term, or its next linear map takes
            ``channels``): a list of aggregators is then projected back
            (``MultiAggregation(mode='proj')`` unless ``aggr_kwargs`` names
            another mode), and any other width is an error. Only layers like
            ``SAGEConv`` take the wider output of a concatenating list.
    """
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width <= 0):
        raise ValueError(f"the aggregation width (aggr_width) must be a positive int (got {width!r})")
    if aggr is None:
        return None
    kwargs = dict(aggr_kwargs or {})
    if isinstance(aggr, (list, tuple)):
        members = kwargs.pop("aggrs_kwargs", None) or [{} for _ in aggr]
        if len(members) != len(aggr):
            raise ValueError(f"'aggrs_kwargs' has {len(members)} entries for {len(aggr)} "
                             f"aggregators")
        if keep_width and kwargs.setdefault("mode", "proj") == "proj":
            kwargs.setdefault("mode_kwargs", {"in_channels": channels, "out_channels": channels})
        module = resolve([_one(q, channels, width, kw) for q, kw in zip(aggr, members)], **kwargs)
    else:
        module = _one(aggr, channels, width, kwargs)
    if keep_width and aggregated_width(module, channels) != channels:
        raise ValueError(f"this layer needs a {channels}-wide aggregate, but "
                         f"{type(module).__name__} outputs {aggregated_width(module, channels)} "
                         f"channels; give a single aggregator, a list (projected back), or "
                         f"mode='proj'")
    return module
