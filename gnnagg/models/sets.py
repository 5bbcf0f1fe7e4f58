r"""A set function model: encode each element, aggregate, decode."""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

import torch
from torch import Tensor
from torch.nn import Embedding, Linear, ReLU, Sequential
from torch_geometric.nn.aggr import Aggregation

from ..aggr import aggregated_width, resolve

__all__ = ["SetModel"]


class SetModel(torch.nn.Module):
    r"""The model of a set function,

    .. math::
        f(\{x_1, \dots, x_d\}) = \rho\Big(\bigoplus_{j=1}^{d} \phi(x_j)\Big),

    with :math:`\phi` and :math:`\rho` two-layer MLPs and :math:`\bigoplus`
    the aggregator under test, as in `"Deep Sets"
    <https://arxiv.org/abs/1703.06114>`_ (Zaheer et al., 2017) with the
    sum replaced by any aggregator, and as in the set benchmarks of
    `"Learnable Commutative Monoids for Graph Neural Networks"
    <https://arxiv.org/abs/2212.08541>`_ (Ong & Veličković, 2022). With the
    same :math:`\phi`, :math:`\rho` and width around every aggregator, a
    comparison measures the aggregators alone.

    Example::

        from gnnagg.datasets.synthetic import generate_sets
        batch = generate_sets('parity', 128, sizes=(2, 16), bits=8)
        model = SetModel(8, 64, 1, aggr='lcm', aggr_kwargs=dict(project=False))
        logits = model(batch.bit_features(), batch.index, dim_size=batch.num_sets)  # (128, 1)

    Args:
        in_channels (int): features per element; with
            ``encoder='embedding'``, the number of distinct element values
            (the input is then their ``long`` ids).
        hidden_channels (int): width of the element embeddings, which the
            aggregator reduces.
        out_channels (int): outputs per set.
        aggr (str or Aggregation or type, optional): the aggregator, built by
            :func:`gnnagg.aggr.resolve` with ``channels=hidden_channels``
            (a module is used as it is). (default: :obj:`"sum"`)
        aggr_kwargs (dict, optional): further arguments of the aggregator.
            (default: :obj:`None`)
        encoder (str, optional): :obj:`"linear"` (the first layer of
            :math:`\phi` is linear in the features) or :obj:`"embedding"` (a
            learned vector per element value). (default: :obj:`"linear"`)
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 aggr: Union[str, Aggregation, type] = "sum",
                 aggr_kwargs: Optional[Dict[str, Any]] = None,
                 encoder: str = "linear") -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive int (got {value!r})")
        if encoder not in ("linear", "embedding"):
            raise ValueError(f"'encoder' must be 'linear' or 'embedding' (got {encoder!r})")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.encoder_kind = out_channels, encoder
        first = (Linear(in_channels, hidden_channels) if encoder == "linear"
                 else Embedding(in_channels, hidden_channels))
        self.encoder = Sequential(first, ReLU(), Linear(hidden_channels, hidden_channels))
        self.aggr = resolve(aggr, channels=hidden_channels, **(aggr_kwargs or {}))
        if self.aggr is None:
            raise ValueError("SetModel needs an aggregator (got None)")
        # A list of aggregators concatenates: the decoder takes that width.
        self.decoder = Sequential(Linear(aggregated_width(self.aggr, hidden_channels),
                                         hidden_channels), ReLU(),
                                  Linear(hidden_channels, out_channels))

    def reset_parameters(self) -> None:
        for module in (self.encoder, self.aggr, self.decoder):
            for m in module.modules():
                if hasattr(m, "reset_parameters") and m is not self:
                    m.reset_parameters()

    def forward(self, x: Tensor, index: Tensor, dim_size: Optional[int] = None) -> Tensor:
        r"""
        Args:
            x (torch.Tensor): ``(E, in_channels)`` element features, or
                ``(E,)`` ``long`` element values with ``encoder='embedding'``.
            index (torch.Tensor): ``(E,)`` the set of each element.
            dim_size (int, optional): the number of sets (default: one more
                than the largest ``index``; give it when the last sets may
                be empty).

        Returns: ``(dim_size, out_channels)``.
        """
        if self.encoder_kind == "linear" and (x.dim() != 2 or x.size(-1) != self.in_channels):
            raise ValueError(f"expected element features of shape (E, {self.in_channels}) "
                             f"(got {tuple(x.shape)})")
        if self.encoder_kind == "embedding" and (x.dim() != 1 or x.dtype != torch.long):
            raise ValueError(f"expected (E,) long element values with encoder='embedding' "
                             f"(got {tuple(x.shape)} {x.dtype})")
        if index.shape != x.shape[:1]:
            raise ValueError(f"'index' must have shape ({x.size(0)},), one set per element "
                             f"(got {tuple(index.shape)})")
        return self.decoder(self.aggr(self.encoder(x), index, dim_size=dim_size))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, aggr={self.aggr}, encoder='{self.encoder_kind}')")
