"""Aggregate a narrower projection of wide messages."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.nn.aggr import Aggregation


class Projected(Aggregation):
    r"""Runs an aggregator on a linear projection of the messages to
    ``width`` channels and maps the result back to ``in_channels``:

    .. math::
        \mathbf{h}_i = \mathbf{W}_{\uparrow}\,
        \mathrm{AGG}\big(\{\mathbf{W}_{\downarrow}\mathbf{x}_j\}_{j \in \mathcal{N}(i)}\big)

    Learned aggregators (LCM, GRU, LSTM) cost :math:`O(w^2)` per neighbour;
    a layer that aggregates its raw input (``SAGEConv``, ``GINConv``, ...)
    on 1,433 bag-of-words features would otherwise build a 14M-parameter
    LCM. The output keeps ``in_channels`` channels, so the layer's own
    weights fit unchanged (the up-projection composes with the layer's
    next linear map).

    Args:
        aggr (str or class): the inner aggregator, for
            :func:`gnnagg.aggr.resolve` (built at ``width`` channels).
        in_channels (int): width of the messages.
        width (int): width the inner aggregator works at.
        **kwargs (optional): further arguments of the inner aggregator.
    """

    def __init__(self, aggr: Any, in_channels: int, width: int, **kwargs: Any) -> None:
        super().__init__()
        from .resolve import resolve

        for name, value in (("in_channels", in_channels), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int (got {value!r})")
        self.in_channels = in_channels
        self.out_channels = in_channels
        self.width = width
        self.down = torch.nn.Linear(in_channels, width)
        self.aggr = resolve(aggr, channels=width, **kwargs)
        self.up = torch.nn.Linear(width, in_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.down.reset_parameters()
        if hasattr(self.aggr, "reset_parameters"):
            self.aggr.reset_parameters()
        self.up.reset_parameters()

    def forward(self, x: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
                dim_size: Optional[int] = None, dim: int = -2,
                max_num_elements: Optional[int] = None) -> Tensor:
        if x.size(-1) != self.in_channels:
            raise ValueError(f"Projected expects messages of {self.in_channels} channels "
                             f"(got shape {tuple(x.shape)})")
        h = self.aggr(self.down(x), index, ptr=ptr, dim_size=dim_size, dim=dim,
                      max_num_elements=max_num_elements)
        return self.up(h)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.aggr}, {self.in_channels}, width={self.width})"
