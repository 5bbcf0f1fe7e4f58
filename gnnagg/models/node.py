r"""Node-classification models with a swappable neighbourhood aggregator:
GCN, GraphSAGE, GIN, APPNP and SGC.

Each model takes plain arguments, builds a fresh aggregator for every layer
through :func:`gnnagg.aggr.resolve` (``channels=`` the width the layer
aggregates, from :func:`gnnagg.aggr.message_channels`), and returns
**logits** (class scores before the softmax) from ``forward(x,
edge_index)``; ``logits`` is the same call under the name the DAGNN model
uses, for the over-smoothing analysis. They serve the citation benchmarks
(Planetoid, Coauthor, Amazon, ogbn-arxiv) and any full-batch node
classification::

    model = GCN(1433, 16, 7, aggr="lcm")               # LCM on 16 and 7 channels
    model = GraphSAGE(1433, 64, 7, aggr="lcm", aggr_width=64)
    loss = F.cross_entropy(model(x, edge_index)[train], y[train])

``aggr_width``: layers that aggregate their raw input (SAGE, GIN, SGC) on
bag-of-words features would build learned aggregators (LCM, GRU, LSTM) at
the full width: an LCM on Cora's 1,433 features has 14M parameters. With
``aggr_width=w`` such aggregators run inside :class:`gnnagg.aggr.Projected`
at ``w`` channels wherever the messages are wider.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn.aggr import Aggregation

from ..aggr import layer_aggregator as _layer_aggregator
from ..aggr import message_channels

__all__ = ["layer_aggregator", "GCN", "GraphSAGE", "GIN", "APPNPNet", "SGC"]

AggrQuery = Union[None, str, type, Aggregation, Sequence[Any]]


def layer_aggregator(aggr: AggrQuery, conv: Union[str, type], in_channels: int,
                     out_channels: int, aggr_kwargs: Optional[Dict[str, Any]] = None,
                     aggr_width: Optional[int] = None) -> Optional[Aggregation]:
    """A fresh aggregation module for one ``conv`` layer of the given sizes:
    :func:`gnnagg.aggr.layer_aggregator` at the width of the messages
    ``conv`` aggregates (:func:`gnnagg.aggr.message_channels`); see there
    for ``aggr``, ``aggr_kwargs`` and ``aggr_width``. Only ``SAGEConv``
    takes the wider output of a concatenating list of aggregators; for the
    other layers a list is projected back to the message width."""
    name = conv if isinstance(conv, str) else conv.__name__
    width = message_channels(conv, in_channels, out_channels)
    return _layer_aggregator(aggr, width, aggr_kwargs, aggr_width,
                             keep_width=name != "SAGEConv")


class _ConvStack(torch.nn.Module):
    """``num_layers`` convolutions ``in -> hidden -> ... -> out``: dropout
    before every layer, then (except after the last) batch norm and ReLU."""

    conv_name = ""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int, dropout: float, aggr: AggrQuery,
                 aggr_kwargs: Optional[Dict[str, Any]], aggr_width: Optional[int],
                 batch_norm: bool, make_conv: Callable[[int, int, Any], torch.nn.Module]):
        super().__init__()
        _check(in_channels=in_channels, hidden_channels=hidden_channels,
               out_channels=out_channels, num_layers=num_layers)
        _check_dropout(dropout)
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.num_layers, self.dropout = out_channels, num_layers, dropout
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = torch.nn.ModuleList(
            make_conv(a, b, layer_aggregator(aggr, self.conv_name, a, b, aggr_kwargs, aggr_width))
            for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = torch.nn.ModuleList(
            torch.nn.BatchNorm1d(hidden_channels) if batch_norm else torch.nn.Identity()
            for _ in range(num_layers - 1))

    def reset_parameters(self):
        for module in list(self.convs) + list(self.norms):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits ``[num_nodes, out_channels]`` (no softmax)."""
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, self.dropout, self.training)
            x = conv(x, edge_index)
            if i < len(self.norms):
                x = F.relu(self.norms[i](x))
        return x

    def logits(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The same as ``forward``: class scores before the softmax."""
        return self.forward(x, edge_index)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, num_layers={self.num_layers}, "
                f"aggr={self.convs[0].aggr_module})")


def _check(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int (got {value!r})")


def _check_dropout(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1) (got {p})")


class GCN(_ConvStack):
    r"""The graph convolutional network from `"Semi-supervised Classification
    with Graph Convolutional Networks" <https://arxiv.org/abs/1609.02907>`_
    (Kipf & Welling, ICLR 2017), any depth:

    .. math::
        \mathbf{X}^{(l+1)} = \sigma\big(\hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}
        \hat{\mathbf{D}}^{-1/2}\mathbf{X}^{(l)}\mathbf{W}^{(l)}\big)

    with the sum over neighbours replaced by ``aggr`` (each layer
    aggregates its transformed, ``out``-wide messages).

    The messages keep GCN's symmetric normalisation, so with ``'mean'``,
    ``'max'`` and the like they are about a node degree smaller than with
    ``'sum'``. On row-normalised features (Planetoid's) the gradients then
    fall below Adam's L2 weight decay of the usual size, and the weights
    decay towards zero. Measured on Cora (hidden 64, Adam lr 0.01, 200
    epochs; ``experiments/sweep/gcn_weight_decay.py``), test accuracy at
    the best validation epoch with ``weight_decay=5e-4`` / without:
    ``'sum'`` 83.4% / 82.4%, ``'mean'`` 21.9% / 72.4%, ``'max'`` 21.8% /
    56.7%. Lower the weight decay, or use :class:`GraphSAGE`, whose
    messages are not normalised, to compare aggregators.

    Args:
        in_channels (int): Input features.
        hidden_channels (int): Hidden features.
        out_channels (int): Classes.
        num_layers (int, optional): Convolutions. (default: :obj:`2`)
        dropout (float, optional): Dropout before every convolution.
            (default: :obj:`0.5`)
        aggr (str, list or Aggregation, optional): The neighbourhood
            aggregator, see :func:`layer_aggregator`. (default: :obj:`"sum"`)
        aggr_kwargs (dict, optional): Its further arguments. (default: :obj:`None`)
        aggr_width (int, optional): Project wider messages to this width
            for learned aggregators. (default: :obj:`None`)
        batch_norm (bool, optional): Batch norm after each hidden layer.
            (default: :obj:`False`)
        cached (bool, optional): Cache the normalised adjacency
            (transductive training on one graph). (default: :obj:`False`)
    """

    conv_name = "GCNConv"

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.5, aggr: AggrQuery = "sum",
                 aggr_kwargs: Optional[Dict[str, Any]] = None, aggr_width: Optional[int] = None,
                 batch_norm: bool = False, cached: bool = False):
        from torch_geometric.nn import GCNConv

        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout, aggr,
                         aggr_kwargs, aggr_width, batch_norm,
                         lambda a, b, agg: GCNConv(a, b, cached=cached, aggr=agg))


class GraphSAGE(_ConvStack):
    r"""GraphSAGE from `"Inductive Representation Learning on Large Graphs"
    <https://arxiv.org/abs/1706.02216>`_ (Hamilton et al., NeurIPS 2017):

    .. math::
        \mathbf{x}'_i = \mathbf{W}_1 \mathbf{x}_i + \mathbf{W}_2 \cdot
        \mathrm{aggr}_{j \in \mathcal{N}(i)} \mathbf{x}_j

    Each layer aggregates its input (``in``-wide messages, so on raw
    bag-of-words features a learned aggregator wants ``aggr_width``).
    Arguments as :class:`GCN` (without ``cached``); ``aggr`` defaults to
    :obj:`"mean"`.
    """

    conv_name = "SAGEConv"

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.5, aggr: AggrQuery = "mean",
                 aggr_kwargs: Optional[Dict[str, Any]] = None, aggr_width: Optional[int] = None,
                 batch_norm: bool = False):
        from torch_geometric.nn import SAGEConv

        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout, aggr,
                         aggr_kwargs, aggr_width, batch_norm,
                         lambda a, b, agg: SAGEConv(a, b, aggr=agg))


class GIN(_ConvStack):
    r"""The graph isomorphism network from `"How Powerful are Graph Neural
    Networks?" <https://arxiv.org/abs/1810.00826>`_ (Xu et al., ICLR 2019)
    for node classification:

    .. math::
        \mathbf{x}'_i = \mathrm{MLP}\big((1 + \epsilon)\mathbf{x}_i +
        \mathrm{aggr}_{j \in \mathcal{N}(i)} \mathbf{x}_j\big)

    with a two-layer MLP (``Linear, ReLU, Linear``) per layer, as PyG's
    ``GIN``. Each layer aggregates its input (``in``-wide messages).
    Arguments as :class:`GraphSAGE`, ``aggr`` defaults to :obj:`"sum"`,
    plus ``train_eps`` (learn :math:`\epsilon`, default :obj:`False`).
    """

    conv_name = "GINConv"

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.5, aggr: AggrQuery = "sum",
                 aggr_kwargs: Optional[Dict[str, Any]] = None, aggr_width: Optional[int] = None,
                 batch_norm: bool = False, train_eps: bool = False):
        from torch_geometric.nn import GINConv

        def make(a: int, b: int, agg: Any) -> torch.nn.Module:
            mlp = torch.nn.Sequential(torch.nn.Linear(a, b), torch.nn.ReLU(),
                                      torch.nn.Linear(b, b))
            return GINConv(mlp, train_eps=train_eps, aggr=agg)

        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout, aggr,
                         aggr_kwargs, aggr_width, batch_norm, make)


class APPNPNet(torch.nn.Module):
    r"""APPNP from `"Predict then Propagate: Graph Neural Networks meet
    Personalized PageRank" <https://arxiv.org/abs/1810.05997>`_ (Klicpera et
    al., ICLR 2019): an MLP, then ``K`` steps of personalised-PageRank
    propagation of its class scores,

    .. math::
        \mathbf{Z}^{(0)} = \mathrm{MLP}(\mathbf{X}), \qquad
        \mathbf{Z}^{(k+1)} = (1 - \alpha)\hat{\mathbf{A}}\mathbf{Z}^{(k)}
        + \alpha \mathbf{Z}^{(0)}

    with one aggregator (``out``-wide) shared by all steps.

    Args:
        in_channels, hidden_channels, out_channels (int): Sizes.
        num_layers (int, optional): Linear layers of the MLP, each after a
            dropout, ReLU between. (default: :obj:`2`)
        K (int, optional): Propagation steps. (default: :obj:`10`)
        alpha (float, optional): Teleport probability. (default: :obj:`0.1`)
        dropout (float, optional): Dropout. (default: :obj:`0.5`)
        aggr, aggr_kwargs, aggr_width: as :class:`GCN`. (default: :obj:`"sum"`)
        cached (bool, optional): Cache the normalised adjacency.
            (default: :obj:`False`)
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, K: int = 10, alpha: float = 0.1, dropout: float = 0.5,
                 aggr: AggrQuery = "sum", aggr_kwargs: Optional[Dict[str, Any]] = None,
                 aggr_width: Optional[int] = None, cached: bool = False):
        from torch_geometric.nn import APPNP

        super().__init__()
        _check(in_channels=in_channels, hidden_channels=hidden_channels,
               out_channels=out_channels, num_layers=num_layers)
        _check_dropout(dropout)
        if isinstance(K, bool) or not isinstance(K, int) or K < 0:
            raise ValueError(f"K must be a non-negative int (got {K!r})")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.dropout = out_channels, dropout
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.lins = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        # APPNP propagates the MLP's output: its messages are out-wide.
        self.prop = APPNP(K, alpha, cached=cached, aggr=layer_aggregator(
            aggr, "APPNP", out_channels, out_channels, aggr_kwargs, aggr_width))

    def reset_parameters(self):
        for lin in self.lins:
            lin.reset_parameters()
        self.prop.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits ``[num_nodes, out_channels]`` (no softmax)."""
        for i, lin in enumerate(self.lins):
            x = lin(F.dropout(x, self.dropout, self.training))
            if i < len(self.lins) - 1:
                x = F.relu(x)
        return self.prop(x, edge_index)

    def logits(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The same as ``forward``: class scores before the softmax."""
        return self.forward(x, edge_index)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, num_layers={len(self.lins)}, K={self.prop.K}, "
                f"alpha={self.prop.alpha}, aggr={self.prop.aggr_module})")


class SGC(torch.nn.Module):
    r"""Simple graph convolution from `"Simplifying Graph Convolutional
    Networks" <https://arxiv.org/abs/1902.07153>`_ (Wu et al., ICML 2019):
    ``K`` propagation steps of the input features, then logistic regression,

    .. math::
        \mathbf{Y} = \big(\hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}
        \hat{\mathbf{D}}^{-1/2}\big)^K \mathbf{X} \mathbf{W}

    with the sum over neighbours replaced by ``aggr``, which aggregates the
    ``in``-wide input features.

    Args:
        in_channels (int): Input features.
        out_channels (int): Classes.
        K (int, optional): Propagation steps. (default: :obj:`2`)
        aggr, aggr_kwargs, aggr_width: as :class:`GCN`. (default: :obj:`"sum"`)
        cached (bool, optional): Propagate once and keep the result, as the
            paper does: right only for a fixed aggregation on one graph.
            :obj:`None` caches exactly when the aggregator has no parameters
            (sum, mean, max, ...: a fixed function of the fixed input);
            :obj:`True` with a learned aggregator is an error.
            (default: :obj:`None`)
    """

    def __init__(self, in_channels: int, out_channels: int, K: int = 2,
                 aggr: AggrQuery = "sum", aggr_kwargs: Optional[Dict[str, Any]] = None,
                 aggr_width: Optional[int] = None, cached: Optional[bool] = None):
        from torch_geometric.nn import SGConv

        super().__init__()
        _check(in_channels=in_channels, out_channels=out_channels)
        if isinstance(K, bool) or not isinstance(K, int) or K < 0:
            raise ValueError(f"K must be a non-negative int (got {K!r})")
        # SGConv propagates its input before its linear map, so the messages
        # are in-wide whichever way the width table files SGConv.
        module = layer_aggregator(aggr, "SGConv", in_channels, in_channels, aggr_kwargs,
                                  aggr_width)
        fixed = module is None or not any(True for _ in module.parameters())
        if cached and not fixed:
            raise ValueError(f"SGC cannot cache propagated features with a learned "
                             f"aggregator ({module}); use cached=None or False")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv = SGConv(in_channels, out_channels, K=K,
                           cached=fixed if cached is None else cached, aggr=module)

    def reset_parameters(self):
        self.conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits ``[num_nodes, out_channels]`` (no softmax)."""
        return self.conv(x, edge_index)

    def logits(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The same as ``forward``: class scores before the softmax."""
        return self.forward(x, edge_index)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"K={self.conv.K}, aggr={self.conv.aggr_module}, cached={self.conv.cached})")
